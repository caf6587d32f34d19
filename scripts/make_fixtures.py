"""Write the dataset fixtures of tests/fixtures: `python scripts/make_fixtures.py [--root DIR]`.

A few rows per dataset in the real column layouts and dtypes (see docs/scaling.md, "Datasets"),
each under ROOT/<hub id>/ in the file layout of the hub repository, so that the real loaders
(`datasets.load_dataset(folder, config, split=...)`) read them unchanged:

- open-r1/DAPO-Math-17k-Processed: README.md (`configs:` block for "all", "en" and "cn", as
  `push_to_hub(config_name=...)` writes it) and <config>/train-00000-of-00001.parquet, where "all"
  holds the English rows then the Chinese ones;
- HuggingFaceH4/MATH-500/test.jsonl; math-ai/olympiadbench/test.jsonl;
- HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet;
  MathArena/aime_2025/data/train-00000-of-00001.parquet;
- math-ai/amc23/test-00000-of-00001.parquet; math-ai/minervamath/test-00000-of-00001.parquet;
- Idavidrein/gpqa: README.md (config gpqa_diamond -> gpqa_diamond.csv) and gpqa_diamond.csv;
- dapo_math_edge_rows.parquet (not a hub dataset): DAPO rows with every kind of bad row, a
  problem wrapped in DAPO's own instruction, and duplicates, for the bad-row tests.

The output depends only on this file (and the installed pyarrow/datasets for the parquet bytes).
"""

from __future__ import annotations

import argparse
import csv
import hashlib
import io
import json
import uuid
from collections.abc import Sequence
from pathlib import Path

import datasets

from gdro.data.dapo_math import DAPO_PREFIX, DAPO_SUFFIX

FIXTURES = Path(__file__).resolve().parent.parent / "tests" / "fixtures"
DAPO_DIR = "open-r1/DAPO-Math-17k-Processed"
DAPO_EDGE_FILE = "dapo_math_edge_rows.parquet"

DAPO_FEATURES = datasets.Features(
    {
        "prompt": datasets.Value("string"),
        "solution": datasets.Value("string"),
        "data_source": datasets.Value("string"),
        "source_prompt": datasets.List(
            {"content": datasets.Value("string"), "role": datasets.Value("string")}
        ),
        "ability": datasets.Value("string"),
        "reward_model": {"ground_truth": datasets.Value("string"), "style": datasets.Value("string")},
        "extra_info": {"index": datasets.Value("string")},
    }
)
DAPO_CONFIGS = ("all", "en", "cn")
DAPO_README = (
    "---\nconfigs:\n"
    + "".join(
        f"- config_name: {name}\n  data_files:\n  - split: train\n    path: {name}/train-*\n"
        for name in DAPO_CONFIGS
    )
    + "---\nFixture: a few rows in the layout of open-r1/DAPO-Math-17k-Processed.\n"
)
GPQA_README = """---
configs:
- config_name: gpqa_diamond
  data_files: gpqa_diamond.csv
---
Fixture: a few rows in the layout of Idavidrein/gpqa (config "gpqa_diamond").
"""
GPQA_COLUMNS = (
    "Pre-Revision Question",
    "Pre-Revision Correct Answer",
    "Question",
    "Correct Answer",
    "Incorrect Answer 1",
    "Incorrect Answer 2",
    "Incorrect Answer 3",
    "Explanation",
    "Subdomain",
    "Record ID",
    "High-level domain",
)


def dapo_row(problem: str | None, answer: str | None, number: int) -> dict:
    """A row as open-r1's processing writes it: `prompt` is the problem, `source_prompt` the DAPO turn."""
    wrapped = f"{DAPO_PREFIX}\n\n{problem or ''}\n\n{DAPO_SUFFIX}"
    return {
        "prompt": problem,
        "solution": answer,
        "data_source": "math_dapo",
        "source_prompt": [{"content": wrapped, "role": "user"}],
        "ability": "MATH",
        "reward_model": {"ground_truth": answer, "style": "rule-lighteval/MATH_v2"},
        "extra_info": {"index": str(uuid.UUID(hashlib.sha256(f"dapo-{number}".encode()).hexdigest()[:32]))},
    }


def long_sum_row(terms: int) -> tuple[str, str]:
    """The problem "Compute the sum $1 + 2 + ... + terms$." written out in full, and its answer."""
    return "Compute the sum $" + " + ".join(str(i) for i in range(1, terms + 1)) + "$.", str(
        terms * (terms + 1) // 2
    )


DAPO_ROWS = [
    ("Find the number of positive divisors of $360$.", "24"),
    ("Let $x + y = 10$ and $xy = 21$. Find $x^2 + y^2$.", "58"),
    ("How many ways can 5 people be seated in a row if two of them must sit together?", "48"),
    ("The sum of the first $n$ odd numbers is $169$. Find $n$.", "13"),
    ("Compute the remainder when $2^{100}$ is divided by $7$.", "2"),
    # 830 and 3,411 Qwen3 tokens in the base template (3,735 and 4,180 bytes): the paper's 3,200-token filter keeps
    # the first (Chinese, about 4.5 bytes a token) and drops the second; a filter that counted bytes drops both.
    (
        "\u5c0f\u660e\u6709\u4e00\u4e2a\u82f9\u679c\u3002"
        + "\u7136\u540e\u5c0f\u660e\u53c8\u5f97\u5230\u4e00\u4e2a\u82f9\u679c\u3002" * 100
        + "\u95ee\uff1a\u5c0f\u660e\u4e00\u5171\u6709\u591a\u5c11\u4e2a\u82f9\u679c\uff1f",
        "101",
    ),
    long_sum_row(700),
]
DAPO_CN_ROWS = [
    ("\u6c42 $12$ \u7684\u6b63\u56e0\u6570\u4e2a\u6570\u3002", "6"),
    ("\u8ba1\u7b97 $7 \\times 8$\u3002", "56"),
]
DAPO_EDGE_ROWS = [
    ("What is 2+3?", "5"),  # 0 kept
    ("", "3"),  # 1 empty_problem
    ("What is 7*6?", None),  # 2 missing_answer
    ("What is 2+3?  ", "5"),  # 3 duplicate_problem (of 0, after stripping)
    (f"{DAPO_PREFIX}\n\nWhat is 10-4?\n\n{DAPO_SUFFIX}", "6"),  # 4 kept, DAPO instruction removed
    ("   ", "1"),  # 5 empty_problem
    ("What is 9+9?", "  "),  # 6 empty_answer
    (None, "2"),  # 7 missing_problem
    ("What is 10-4?", "6"),  # 8 duplicate_problem (of 4, after removing the instruction)
    ("What is 3*3?", " 9 "),  # 9 kept, answer stripped to "9"
]


def write_parquet(path: Path, rows: list[dict], features: datasets.Features | None = None) -> None:
    """Rows (dicts with the same keys) as a parquet file, with datasets' schema metadata as on the hub."""
    path.parent.mkdir(parents=True, exist_ok=True)
    columns = {key: [row[key] for row in rows] for key in rows[0]}
    datasets.Dataset.from_dict(columns, features=features).to_parquet(str(path))


def write_text(path: Path, text: str) -> None:
    """UTF-8 text with "\n" line ends, whatever the platform."""
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8", newline="\n")


def jsonl(rows: list[dict]) -> str:
    """One JSON object per line, as the hub's test.jsonl files."""
    return "".join(json.dumps(row, ensure_ascii=False) + "\n" for row in rows)


def gpqa_csv(rows: list[dict]) -> str:
    """GPQA's CSV: a header of `GPQA_COLUMNS`, quoted where a value needs it."""
    buffer = io.StringIO()
    writer = csv.DictWriter(buffer, fieldnames=GPQA_COLUMNS, lineterminator="\n")
    writer.writeheader()
    writer.writerows(rows)
    return buffer.getvalue()


def write_dapo(root: Path) -> None:
    """The DAPO-Math folder (three configs) and the edge-row file."""
    english = [dapo_row(problem, answer, i) for i, (problem, answer) in enumerate(DAPO_ROWS)]
    chinese = [dapo_row(problem, answer, 50 + i) for i, (problem, answer) in enumerate(DAPO_CN_ROWS)]
    write_text(root / DAPO_DIR / "README.md", DAPO_README)
    for name, rows in (("all", english + chinese), ("en", english), ("cn", chinese)):
        write_parquet(root / DAPO_DIR / name / "train-00000-of-00001.parquet", rows, DAPO_FEATURES)
    edge = [dapo_row(problem, answer, 100 + i) for i, (problem, answer) in enumerate(DAPO_EDGE_ROWS)]
    write_parquet(root / DAPO_EDGE_FILE, edge, DAPO_FEATURES)


def write_math500(root: Path) -> None:
    """MATH-500: problem, solution, answer (str), subject, level (int), unique_id."""
    rows = [
        {
            "problem": "Convert the point $(0,3)$ in rectangular coordinates to polar coordinates.",
            "solution": "We have $r = 3$ and $\\theta = \\frac{\\pi}{2}$, so $\\boxed{\\left( 3, \\frac{\\pi}{2} \\right)}$.",
            "answer": "\\left( 3, \\frac{\\pi}{2} \\right)",
            "subject": "Precalculus",
            "level": 2,
            "unique_id": "test/precalculus/807.json",
        },
        {
            "problem": "What is the value of $513^2 - 487^2$?",
            "solution": "$(513+487)(513-487) = 1000 \\cdot 26 = \\boxed{26000}$.",
            "answer": "26000",
            "subject": "Algebra",
            "level": 1,
            "unique_id": "test/algebra/2036.json",
        },
        {
            "problem": "Simplify $\\sqrt{242}$.",
            "solution": "$\\sqrt{242} = \\sqrt{121 \\cdot 2} = \\boxed{11\\sqrt2}$.",
            "answer": "11\\sqrt2",
            "subject": "Prealgebra",
            "level": 4,
            "unique_id": "test/prealgebra/1302.json",
        },
    ]
    write_text(root / "HuggingFaceH4/MATH-500/test.jsonl", jsonl(rows))


def write_aime(root: Path) -> None:
    """AIME 2024 (H4: id, problem, solution, answer str, url, year) and 2025 (MathArena: answer int)."""
    aime24 = [
        {
            "id": 60 + i,
            "problem": problem,
            "solution": f"Working omitted; the answer is $\\boxed{{{answer}}}$.",
            "answer": answer,
            "url": f"https://artofproblemsolving.com/wiki/index.php/2024_AIME_I_Problems/Problem_{i + 1}",
            "year": "2024",
        }
        for i, (problem, answer) in enumerate(
            [
                ("Find the largest three-digit multiple of $17$.", "986"),
                ("Let $N = 2^{10}$. Find the remainder when $N$ is divided by $1000$.", "024"),
                ("How many positive integers less than $100$ are perfect squares?", "9"),
            ]
        )
    ]
    write_parquet(root / "HuggingFaceH4/aime_2024/data/train-00000-of-00001.parquet", aime24)
    aime25 = [
        {
            "problem_idx": 1,
            "problem": "Find the sum of all positive divisors of $28$.",
            "answer": 56,
            "problem_type": ["Number Theory"],
        },
        {
            "problem_idx": 2,
            "problem": "Compute $\\binom{10}{3}$.",
            "answer": 120,
            "problem_type": ["Combinatorics"],
        },
        {
            "problem_idx": 3,
            "problem": "A square has area $49$. Find its perimeter.",
            "answer": 28,
            "problem_type": ["Geometry", "Algebra"],
        },
    ]
    write_parquet(root / "MathArena/aime_2025/data/train-00000-of-00001.parquet", aime25)


def write_math_ai(root: Path) -> None:
    """math-ai's amc23 (answer float), minervamath (question, answer) and olympiadbench (list answers)."""
    amc23 = [
        {
            "id": 0,
            "question": "Compute $3^3$.",
            "answer": 27.0,
            "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_1",
        },
        {
            "id": 1,
            "question": "What is half of $1$?",
            "answer": 0.5,
            "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12A_Problems/Problem_2",
        },
        {
            "id": 2,
            "question": "How many primes are less than $20$?",
            "answer": 8.0,
            "url": "https://artofproblemsolving.com/wiki/index.php/2023_AMC_12B_Problems/Problem_3",
        },
    ]
    write_parquet(root / "math-ai/amc23/test-00000-of-00001.parquet", amc23)
    minerva = [
        {
            "question": "A star has a parallax of $0.1$ arcseconds. What is its distance in parsecs?",
            "answer": "10",
        },
        {"question": "Compute the energy in eV of a photon of wavelength $1240$ nm.", "answer": "1"},
        {"question": "If $f(t) = e^{-2t}$, what is $f(0)$?", "answer": "1"},
    ]
    write_parquet(root / "math-ai/minervamath/test-00000-of-00001.parquet", minerva)
    olympiad = [
        {
            "id": 1606 + i,
            "question": question,
            "solution": [f"The answer is {answers[0]}."],
            "final_answer": answers,
            "context": None,
            "modality": "Text-only",
            "difficulty": "Competition",
            "is_multiple_answer": len(answers) > 1,
            "unit": None,
            "answer_type": "Numerical",
            "error": None,
            "question_type": "Open-ended",
            "subfield": "Algebra",
            "subject": "Math",
            "language": "English",
        }
        for i, (question, answers) in enumerate(
            [
                ("Find the positive real $x$ with $x^2 = 2x$.", ["2"]),
                ("Find all primes $p$ with $p^2 - 8p + 15 = 0$.", ["3", "5"]),
                ("Compute $\\frac{1}{2} + \\frac{1}{3}$.", ["$\\frac{5}{6}$"]),
            ]
        )
    ]
    write_text(root / "math-ai/olympiadbench/test.jsonl", jsonl(olympiad))


def write_gpqa(root: Path) -> None:
    """GPQA diamond: the columns the adapter reads plus a few others; some values carry whitespace."""
    items = [
        (
            "What is the SI unit of force?",
            " Newton",
            "Joule",
            "Watt",
            "Pascal\n",
            "Physics (general)",
            "Physics",
        ),
        (
            "Which element has atomic number 6?",
            "Carbon",
            "Nitrogen",
            "Oxygen",
            "Boron",
            "Chemistry (general)",
            "Chemistry",
        ),
        (
            "How many chromosomes does a human somatic cell have?",
            "46",
            "23",
            "44",
            "48",
            "Genetics",
            "Biology",
        ),
        ("What is the pH of pure water at 25 C?", "7", "0", "14", "1", "Chemistry (general)", "Chemistry"),
        (
            "Which particle carries a negative charge?",
            "Electron",
            "Proton",
            "Neutron",
            "Photon",
            "Physics (general)",
            "Physics",
        ),
    ]
    rows = [
        {
            "Pre-Revision Question": question,
            "Pre-Revision Correct Answer": correct.strip(),
            "Question": question,
            "Correct Answer": correct,
            "Incorrect Answer 1": wrong1,
            "Incorrect Answer 2": wrong2,
            "Incorrect Answer 3": wrong3,
            "Explanation": f"{correct.strip()}, by definition.",
            "Subdomain": subdomain,
            "Record ID": f"rec{hashlib.sha256(question.encode()).hexdigest()[:14]}",
            "High-level domain": domain,
        }
        for question, correct, wrong1, wrong2, wrong3, subdomain, domain in items
    ]
    write_text(root / "Idavidrein/gpqa/README.md", GPQA_README)
    write_text(root / "Idavidrein/gpqa/gpqa_diamond.csv", gpqa_csv(rows))


def write_fixtures(root: Path) -> list[Path]:
    """Write every fixture under `root`; returns the files written, sorted."""
    for write in (write_dapo, write_math500, write_aime, write_math_ai, write_gpqa):
        write(root)
    return sorted(path for path in root.rglob("*") if path.is_file())


def main(argv: Sequence[str] | None = None) -> list[Path]:
    """Write the fixtures and print each file with its size."""
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--root", type=Path, default=FIXTURES, help="output folder (default: tests/fixtures)")
    args = parser.parse_args(argv)
    written = write_fixtures(args.root)
    for path in written:
        print(f"{path.stat().st_size:7d}  {path}")
    return written


if __name__ == "__main__":
    main()
