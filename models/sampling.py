"""Turning next-character logits into characters: temperature, top-k, top-p, argmax."""

from __future__ import annotations

import math

import torch

from models.errors import SamplingError


def check_sampling_args(temperatures, lengths, top_k: int | None, top_p: float | None) -> None:
    for t in temperatures:
        if not isinstance(t, (int, float)) or math.isnan(t) or math.isinf(t) or t < 0:
            raise SamplingError(f"temperature must be a finite number >= 0, got {t!r}")
    for n in lengths:
        if not isinstance(n, int) or isinstance(n, bool) or n < 1:
            raise SamplingError(f"length must be a positive integer, got {n!r}")
    if top_k is not None and (not isinstance(top_k, int) or top_k < 1):
        raise SamplingError(f"top_k must be a positive integer, got {top_k!r}")
    if top_p is not None and not (isinstance(top_p, (int, float)) and 0.0 < top_p <= 1.0):
        raise SamplingError(f"top_p must be in (0, 1], got {top_p!r}")


def sample_next(
    logits: torch.Tensor,
    temperature: torch.Tensor,
    uniform: torch.Tensor,
    top_k: int | None = None,
    top_p: float | None = None,
) -> torch.Tensor:
    """logits (B, V), temperature (B,), uniform (B,) in [0, 1) -> next ids (B,).

    Rows with temperature 0 take the argmax. Others sample by inverse CDF with their own
    uniform number, so each row's draw depends only on its own random stream: a prompt samples
    the same text alone or in a batch.
    """
    logits = logits.float()
    greedy = logits.argmax(dim=-1)
    hot = temperature > 0
    if not bool(hot.any()):
        return greedy
    scaled = logits / temperature.clamp_min(1e-6).unsqueeze(1)
    if top_k is not None and top_k < scaled.shape[1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    probs = torch.softmax(scaled, dim=-1)
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = probs.sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of strictly more likely chars
        sorted_probs = sorted_probs.masked_fill(before >= top_p, 0.0)  # always keeps the top char
        probs = torch.zeros_like(probs).scatter_(1, order, sorted_probs)
    cdf = probs.cumsum(dim=-1)
    target = (uniform * cdf[:, -1]).unsqueeze(1)
    drawn = torch.searchsorted(cdf, target, right=True).squeeze(1).clamp_max(probs.shape[1] - 1)
    return torch.where(hot, drawn, greedy)
