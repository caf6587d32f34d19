"""The `dapo` reward: verl's `math_dapo.compute_score` (DAPO's "Answer:" line, Minerva normalisation).

Behaviour followed: volcengine/verl `verl/utils/reward_score/math_dapo.py` as of commit b178a3cd
(2026-01-29; the file last changed in 00a10a8e, 2025-06-30, formatting only since the DAPO recipe
landed in 3a27a986, 2025-04-04), with `strict_box_verify=False`, the setting of the paper's runs.
That version has NO fallback to the last `\\boxed{}` when "Answer:" is missing (a later verl added
one); neither do we. Reimplemented here; the substitution tables are data, kept verbatim, from
lm-evaluation-harness's hendrycks_math utils via verl (Apache-2.0), after Lewkowycz et al. 2022.

    tail   = completion[-300:]
    pred   = last match of (?i)Answer\\s*:\\s*([^\\n]+) in tail          (none: r = -1)
    r      = +1 if normalize(pred) == normalize(answer) else -1   (exact string equality)

Pure string work on at most 300 characters (the regexes are at worst quadratic in that), so it
runs inline: no deadline, no pool.
"""

from __future__ import annotations

import re

from gdro.rewards.registry import inline_reward

TAIL_CHARS = 300
ANSWER_LINE = re.compile(r"(?i)Answer\s*:\s*([^\n]+)")

SUBSTITUTIONS = (
    ("an ", ""),
    ("a ", ""),
    (".$", "$"),
    ("\\$", ""),
    (r"\ ", ""),
    (" ", ""),
    ("mbox", "text"),
    (",\\text{and}", ","),
    ("\\text{and}", ","),
    ("\\text{m}", "\\text{}"),
)
REMOVED_EXPRESSIONS = (
    "square", "ways", "integers", "dollars", "mph", "inches", "hours", "km", "units", "\\ldots",
    "sue", "points", "feet", "minutes", "digits", "cents", "degrees", "cm", "gm", "pounds", "meters",
    "meals", "edges", "students", "childrentickets", "multiples", "\\text{s}", "\\text{.}",
    "\\text{\ns}", "\\text{}^2", "\\text{}^3", "\\text{\n}", "\\text{}", r"\mathrm{th}", r"^\circ",
    r"^{\circ}", r"\;", r",\!", "{,}", '"', "\\dots",
)  # fmt: skip

# Applied in this order, each with re.sub (every non-overlapping match).
_UNWRAPS = (
    (re.compile(r"(.*?)(\$)(.*?)(\$)(.*)"), "$\\3$"),  # keep only the first $...$ of each line
    (re.compile(r"(\\text\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\textbf\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\overline\{)(.*?)(\})"), "\\2"),
    (re.compile(r"(\\boxed\{)(.*)(\})"), "\\2"),  # greedy: up to the last }
    (re.compile(r"(frac)([^{])(.)"), "frac{\\2}{\\3}"),  # \frac12 -> \frac{1}{2}
    (re.compile(r"(sqrt)([^{])"), "sqrt{\\2}"),  # \sqrt2 -> \sqrt{2}
)


def normalize_final_answer(answer: str) -> str:
    """Minerva normalisation, step by step as verl's `normalize_final_answer`.

    Text after the last "="; the substitutions, then the removed expressions (plain `str.replace`,
    anywhere in the string: "a " and "an " vanish too); the unwraps above; every "$" dropped;
    a string that is all digits once commas are dropped ("1,000") loses its commas; stripped.
    """
    answer = answer.split("=")[-1]
    for before, after in SUBSTITUTIONS:
        answer = answer.replace(before, after)
    for expression in REMOVED_EXPRESSIONS:
        answer = answer.replace(expression, "")
    for pattern, replacement in _UNWRAPS:
        answer = pattern.sub(replacement, answer)
    answer = answer.replace("$", "")
    if answer.replace(",", "").isdigit():
        answer = answer.replace(",", "")
    return answer.strip()


@inline_reward("dapo")
def dapo_score(text: str, answer: str) -> float:
    """+1.0 if the last "Answer: ..." of the last 300 characters normalises to the reference, else -1.0."""
    matches = ANSWER_LINE.findall(text[-TAIL_CHARS:])
    if not matches:
        return -1.0
    return 1.0 if normalize_final_answer(matches[-1]) == normalize_final_answer(answer) else -1.0
