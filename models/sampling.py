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


def gumbel_noise(seeds: list[int], steps: int, vocab_size: int) -> torch.Tensor:
    """(rows, steps, V) Gumbel(0, 1) noise, row i drawn from its own generator seeded with seeds[i]."""
    uniform = torch.stack([torch.rand(steps, vocab_size, generator=torch.Generator().manual_seed(s))
                           for s in seeds])
    return gumbel(uniform)


def gumbel(uniform: torch.Tensor) -> torch.Tensor:
    """Uniform [0, 1) -> Gumbel(0, 1): -log(-log(u)) (u = 0 gives -inf, a draw that never wins)."""
    return uniform.log_().neg_().log_().neg_()


def sample_next(
    logits: torch.Tensor,
    inv_temperature: torch.Tensor,
    noise: torch.Tensor,
    top_k: int | None = None,
    top_p: float | None = None,
    hot: torch.Tensor | None = None,
) -> torch.Tensor:
    """logits (B, V), inv_temperature (B,) = 1/T, noise (B, V) Gumbel -> next ids (B,).

    The Gumbel-max trick: argmax(logits / T + g) with g ~ Gumbel(0, 1) i.i.d. is an exact draw from
    softmax(logits / T), in three small ops per character, and each row's draw depends only on
    its own noise: a prompt samples the same text alone or in a batch. top-k and top-p restrict
    the candidates first (the draw is then from the renormalised remainder). `hot` (B,) marks
    rows with temperature > 0; the others take the argmax (default: all hot).
    """
    logits = logits.float()
    if top_k is None and (top_p is None or top_p >= 1.0):
        drawn = torch.addcmul(noise, logits, inv_temperature.unsqueeze(1)).argmax(dim=-1)
    else:
        drawn = (_restrict(logits * inv_temperature.unsqueeze(1), top_k, top_p) + noise).argmax(dim=-1)
    if hot is None or bool(hot.all()):
        return drawn
    return torch.where(hot, drawn, logits.argmax(dim=-1))


def _restrict(scaled: torch.Tensor, top_k: int | None, top_p: float | None) -> torch.Tensor:
    """-inf outside the k likeliest characters and outside the top-p probability mass."""
    if top_k is not None and top_k < scaled.shape[1]:
        kth = scaled.topk(top_k, dim=-1).values[:, -1:]
        scaled = scaled.masked_fill(scaled < kth, float("-inf"))
    if top_p is not None and top_p < 1.0:
        sorted_probs, order = torch.softmax(scaled, dim=-1).sort(dim=-1, descending=True)
        before = sorted_probs.cumsum(dim=-1) - sorted_probs  # mass of strictly more likely chars
        outside = torch.zeros_like(scaled, dtype=torch.bool).scatter_(1, order, before >= top_p)
        scaled = scaled.masked_fill(outside, float("-inf"))  # always keeps the top char
    return scaled
