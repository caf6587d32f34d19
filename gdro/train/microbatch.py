"""Cutting a PPO mini-batch into micro-batches that fit a token budget.

A micro-batch of rows is one padded forward pass of rows x longest row tokens (prompt + completion,
right-padded); gradient accumulation over the micro-batches of a mini-batch then gives the mini-batch's
gradient (see `gdro.core.grpo.aggregate_loss_share`), so the cut changes memory, not the update.
"""

from __future__ import annotations

from collections.abc import Sequence


def token_budget_microbatches(row_tokens: Sequence[int], max_tokens: int) -> list[range]:
    """Consecutive row ranges, in order, each with padded size |rows| x max(row_tokens) <= max_tokens.

    Greedy: a row joins the current micro-batch unless the padded size would then exceed the budget.
    A row longer than the budget on its own forms a micro-batch of one. Any cut into consecutive
    ranges that respects the budget has at least as many micro-batches (the padded size of a range
    never shrinks when it grows), and the result depends on the lengths only.

    Args:
        row_tokens: [S] tokens of each row (its padded width in a forward pass), >= 0.
        max_tokens: the budget, >= 1.

    Returns:
        Ranges covering 0..S-1 exactly once, in order; empty for S = 0.
    """
    if max_tokens < 1:
        raise ValueError(f"max_tokens must be >= 1, got {max_tokens}")
    if any(tokens < 0 for tokens in row_tokens):
        raise ValueError("row token counts must be >= 0")
    cuts: list[range] = []
    start, longest = 0, 0
    for row, tokens in enumerate(row_tokens):
        widest = max(longest, tokens)
        if row > start and (row - start + 1) * widest > max_tokens:
            cuts.append(range(start, row))
            start, widest = row, tokens
        longest = widest
    if len(row_tokens) > start:
        cuts.append(range(start, len(row_tokens)))
    return cuts
