"""Online difficulty classifier: pass@k bins from a sliding window of each prompt's history (docs/algorithm.md §2).

Per prompt id x (stable across epochs) the classifier keeps the last H visits of
  c = 1 if ANY of that visit's n rollouts was correct (pass@n), and
  the visit's correct-rollout count and rollout count,
and estimates
  p_hat(x) = mean of the c-window                      (`estimator: any_correct`, the paper's code), or
  p_hat(x) = 1 - (1 - p1(x))^k, p1 = correct / rollouts (`estimator: rate`, independent of n).
Bins: edges 0 < a_1 < ... < a_{B-1} < 1, bin 0 hardest (lowest p_hat). With hysteresis delta a prompt in
bin b whose raw bin is r moves up only if p_hat >= a_{b+1} + delta and down only if p_hat < a_b - delta,
and then jumps straight to r. A prompt never seen is in bin 0. With `exclude_extremes`, a seen prompt whose
window holds no correct rollout or no failed one (sum c = 0 or sum c = sum n, decided from the integer counts,
never from the float p_hat: 1 - (1 - p1)^k rounds to 1.0 once p1 > ~0.99) is put in an extra group with
index B (`excluded_group`).

Classification reads the history BEFORE a step's results; `record` adds the results afterwards and
moves the recorded prompts' bins.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from gdro.core.state import decode_array, encode_array

BIN_EDGE_PRESETS: dict[int, tuple[float, ...]] = {
    3: (0.4, 0.75),
    6: (0.1, 0.3, 0.5, 0.7, 0.9),
    10: (0.1, 0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8, 0.9),
}


@dataclass
class ClassifierConfig:
    """Knobs of the difficulty classifier; defaults are the paper's (H = 100, B = 10, delta = 0.03)."""

    num_bins: int = 10
    """B, difficulty bins: 3, 6 or 10 have edge presets (else give bin_edges)."""
    bin_edges: list[float] | None = None
    """The B - 1 interior edges in (0, 1), increasing; null: the preset for num_bins."""
    window: int = 100
    """H, the visits per prompt the windowed estimate remembers (paper: 100; 50 in its Rollout-GDRO runs)."""
    hysteresis: float = 0.03
    """delta, how far past an edge the estimate must move before a prompt changes bin."""
    estimator: Literal["any_correct", "rate"] = "any_correct"
    """any_correct: pass@n_i of each visit (the paper's code); rate: 1 - (1 - p1)^k, independent of n_i."""
    k: int = 8
    """The k of estimator rate."""
    exclude_extremes: bool = False
    """Windows with no correct or no failed rollout go to a separate group with no adversary weight."""

    def validate(self) -> None:
        """Fail early, naming the key."""
        self.edges()
        if self.window < 1:
            raise ValueError(f"classifier.window={self.window}: must be >= 1")
        if self.estimator not in ("any_correct", "rate"):
            raise ValueError(f"classifier.estimator={self.estimator!r}: use 'any_correct' or 'rate'")
        if self.k < 1:
            raise ValueError(f"classifier.k={self.k}: must be >= 1")
        if self.hysteresis < 0:
            raise ValueError(f"classifier.hysteresis={self.hysteresis}: must be >= 0")

    def edges(self) -> np.ndarray:
        """The B - 1 interior bin edges, validated."""
        if self.bin_edges is None:
            if self.num_bins not in BIN_EDGE_PRESETS:
                raise ValueError(
                    f"classifier.num_bins={self.num_bins} has no edge preset; "
                    f"use one of {sorted(BIN_EDGE_PRESETS)} or set classifier.bin_edges"
                )
            edges = np.asarray(BIN_EDGE_PRESETS[self.num_bins], dtype=np.float64)
        else:
            edges = np.asarray(self.bin_edges, dtype=np.float64)
        if len(edges) != self.num_bins - 1:
            raise ValueError(
                f"classifier.bin_edges has {len(edges)} edges; num_bins={self.num_bins} needs {self.num_bins - 1}"
            )
        if len(edges) and (edges[0] <= 0 or edges[-1] >= 1 or np.any(np.diff(edges) <= 0)):
            raise ValueError("classifier.bin_edges must be strictly increasing inside (0, 1)")
        return edges


@dataclass
class _Windows:
    """Ring buffers of the last H visits per prompt, with running sums for O(1) updates."""

    any_correct: np.ndarray  # [N, H] int8
    correct: np.ndarray  # [N, H] int32
    rollouts: np.ndarray  # [N, H] int32
    cursor: np.ndarray  # [N] int64, next slot to write
    filled: np.ndarray  # [N] int64, visits held (<= H)
    sum_any: np.ndarray = field(init=False)
    sum_correct: np.ndarray = field(init=False)
    sum_rollouts: np.ndarray = field(init=False)

    def __post_init__(self) -> None:
        self.sum_any = self.any_correct.sum(axis=1, dtype=np.int64)
        self.sum_correct = self.correct.sum(axis=1, dtype=np.int64)
        self.sum_rollouts = self.rollouts.sum(axis=1, dtype=np.int64)


class DifficultyClassifier:
    """Puts prompt ids 0..N-1 into difficulty bins from their own windowed history.

    Scales to N = 100k ids: all state is dense arrays indexed by id, every call is vectorised over the
    batch (a batch with repeated ids is recorded in order, one occurrence at a time).
    """

    def __init__(self, num_prompts: int, config: ClassifierConfig | None = None) -> None:
        self.config = config or ClassifierConfig()
        self.num_prompts = int(num_prompts)
        self.config.validate()
        self.edges = self.config.edges()
        self.num_bins = self.config.num_bins
        n, h = self.num_prompts, self.config.window
        self._windows = _Windows(
            any_correct=np.zeros((n, h), dtype=np.int8),
            correct=np.zeros((n, h), dtype=np.int32),
            rollouts=np.zeros((n, h), dtype=np.int32),
            cursor=np.zeros(n, dtype=np.int64),
            filled=np.zeros(n, dtype=np.int64),
        )
        self._bin = np.zeros(n, dtype=np.int64)  # hysteretic bin; never-seen prompts sit in bin 0

    @property
    def num_groups(self) -> int:
        """B, plus one for the excluded group when `exclude_extremes` is on."""
        return self.num_bins + int(self.config.exclude_extremes)

    @property
    def excluded_group(self) -> int | None:
        """Index of the excluded group (B), or None when extremes are not excluded."""
        return self.num_bins if self.config.exclude_extremes else None

    def seen(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Whether each prompt has at least one recorded visit; bool [M]."""
        return self._windows.filled[prompt_ids] > 0

    def success_rate(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Windowed per-rollout success rate p1(x) = correct / rollouts; NaN for unseen prompts; [M]."""
        w = self._windows
        rollouts = w.sum_rollouts[prompt_ids]
        with np.errstate(invalid="ignore", divide="ignore"):
            return np.where(rollouts > 0, w.sum_correct[prompt_ids] / np.maximum(rollouts, 1), np.nan)

    def recorded_rollouts(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Rollouts the window holds per prompt (0 for unseen prompts); [M] int."""
        return self._windows.sum_rollouts[prompt_ids].copy()

    def pass_estimate(self, prompt_ids: np.ndarray) -> np.ndarray:
        """p_hat(x) used for binning (see module docstring); NaN for unseen prompts; [M]."""
        w = self._windows
        filled = w.filled[prompt_ids]
        if self.config.estimator == "any_correct":
            with np.errstate(invalid="ignore", divide="ignore"):
                return np.where(filled > 0, w.sum_any[prompt_ids] / np.maximum(filled, 1), np.nan)
        return 1.0 - (1.0 - self.success_rate(prompt_ids)) ** self.config.k

    def raw_bin(self, p_hat: np.ndarray) -> np.ndarray:
        """Bin of p_hat without hysteresis: the number of edges a_j <= p_hat; [M] int."""
        return np.searchsorted(self.edges, p_hat, side="right").astype(np.int64)

    def classify(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Group of each prompt from history recorded so far (pure read); [M] int in [0, num_groups)."""
        prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
        bins = self._bin[prompt_ids].copy()
        if self.config.exclude_extremes:
            bins[self.extreme(prompt_ids)] = self.num_bins
        return bins

    def extreme(self, prompt_ids: np.ndarray) -> np.ndarray:
        """Seen prompts whose window holds no correct rollout or no failed one; bool [M]."""
        w = self._windows
        correct, rollouts = w.sum_correct[prompt_ids], w.sum_rollouts[prompt_ids]
        return (rollouts > 0) & ((correct == 0) | (correct == rollouts))

    def record(
        self, prompt_ids: np.ndarray, rollouts_per_prompt: np.ndarray, correct_per_prompt: np.ndarray
    ) -> None:
        """Add one visit per prompt (n_i rollouts, c_i correct) and move the visited prompts' bins."""
        prompt_ids = np.asarray(prompt_ids, dtype=np.int64)
        rollouts = np.asarray(rollouts_per_prompt, dtype=np.int64)
        correct = np.asarray(correct_per_prompt, dtype=np.int64)
        if np.any(correct < 0) or np.any(correct > rollouts):
            raise ValueError("record: need 0 <= correct_per_prompt <= rollouts_per_prompt")
        keep = rollouts > 0  # a prompt given no rollout is not a visit
        prompt_ids, rollouts, correct = prompt_ids[keep], rollouts[keep], correct[keep]
        unique_ids = np.unique(prompt_ids)
        if len(unique_ids) == len(prompt_ids):
            self._write(prompt_ids, rollouts, correct)
        else:  # repeated ids are written one occurrence per pass, so the ring buffer sees them in order
            order = np.argsort(prompt_ids, kind="stable")
            sorted_ids = prompt_ids[order]
            starts = np.r_[0, np.flatnonzero(np.diff(sorted_ids)) + 1]
            occurrence = np.arange(len(sorted_ids)) - np.repeat(
                starts, np.diff(np.r_[starts, len(sorted_ids)])
            )
            for rank in range(int(occurrence.max()) + 1):
                chosen = order[occurrence == rank]
                self._write(prompt_ids[chosen], rollouts[chosen], correct[chosen])
        self._move_bins(unique_ids)

    def _write(self, ids: np.ndarray, rollouts: np.ndarray, correct: np.ndarray) -> None:
        w = self._windows
        slot = w.cursor[ids]
        any_correct = (correct > 0).astype(np.int8)
        w.sum_any[ids] += any_correct - w.any_correct[ids, slot]
        w.sum_correct[ids] += correct - w.correct[ids, slot]
        w.sum_rollouts[ids] += rollouts - w.rollouts[ids, slot]
        w.any_correct[ids, slot] = any_correct
        w.correct[ids, slot] = correct
        w.rollouts[ids, slot] = rollouts
        w.cursor[ids] = (slot + 1) % self.config.window
        w.filled[ids] = np.minimum(w.filled[ids] + 1, self.config.window)

    def _move_bins(self, ids: np.ndarray) -> None:
        """Hysteresis: leave bin b only past a_{b+1} + delta (up) or below a_b - delta (down)."""
        p_hat = self.pass_estimate(ids)
        current = self._bin[ids]
        raw = self.raw_bin(p_hat)
        upper = np.append(self.edges, np.inf)[current]  # a_{b+1}; the top bin cannot move up
        lower = np.insert(self.edges, 0, -np.inf)[current]  # a_b; bin 0 cannot move down
        delta = self.config.hysteresis
        move = ((raw > current) & (p_hat >= upper + delta)) | ((raw < current) & (p_hat < lower - delta))
        self._bin[ids] = np.where(move, raw, current)

    def bin_counts(self) -> np.ndarray:
        """How many of all N prompts each group holds now; [num_groups] int."""
        return np.bincount(self.classify(np.arange(self.num_prompts)), minlength=self.num_groups)

    def state_dict(self) -> dict[str, Any]:
        """Windows, cursors and bins, JSON-safe (seen prompts only, so a fresh 100k-id run stays small)."""
        w = self._windows
        seen_ids = np.flatnonzero(w.filled > 0)
        return {
            "num_prompts": self.num_prompts,
            "seen_ids": encode_array(seen_ids),
            "any_correct": encode_array(w.any_correct[seen_ids]),
            "correct": encode_array(w.correct[seen_ids]),
            "rollouts": encode_array(w.rollouts[seen_ids]),
            "cursor": encode_array(w.cursor[seen_ids]),
            "filled": encode_array(w.filled[seen_ids]),
            "bin": encode_array(self._bin[seen_ids]),
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore what `state_dict` saved into a classifier built with the same config and N."""
        if state["num_prompts"] != self.num_prompts:
            raise ValueError(
                f"checkpoint classifier has {state['num_prompts']} prompts, this run {self.num_prompts}"
            )
        n, h = self.num_prompts, self.config.window
        seen_ids = decode_array(state["seen_ids"])
        arrays = {
            "any_correct": np.zeros((n, h), dtype=np.int8),
            "correct": np.zeros((n, h), dtype=np.int32),
            "rollouts": np.zeros((n, h), dtype=np.int32),
            "cursor": np.zeros(n, dtype=np.int64),
            "filled": np.zeros(n, dtype=np.int64),
        }
        for name, array in arrays.items():
            array[seen_ids] = decode_array(state[name])
        self._windows = _Windows(**arrays)
        self._bin = np.zeros(n, dtype=np.int64)
        self._bin[seen_ids] = decode_array(state["bin"])
