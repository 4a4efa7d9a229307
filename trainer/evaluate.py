"""Validation loss over the whole held-out split."""

from __future__ import annotations

import contextlib
import math
from collections.abc import Callable

import torch
import torch.nn.functional as F

from models.model import CharRNN


@torch.inference_mode()
def estimate_loss(model: CharRNN, ids: torch.Tensor, streams: int = 16, chunk: int = 512,
                  autocast=contextlib.nullcontext, on_progress: Callable[[int], None] | None = None) -> float:
    """Mean nats per character of predicting every character of `ids` after the first.

    The text is cut into `streams` contiguous rows read in parallel with the state carried; the
    leftover tail continues the last row's state, so every character is scored exactly once.
    `on_progress(n)` hears how many characters are scored so far, after each chunk.
    """
    was_training = model.training
    model.eval()
    ids = ids.to(model.head.weight.device)  # the model's device (the text is encoded on the CPU)
    n = len(ids) - 1
    if n < 1:
        raise ValueError("validation text needs at least two characters")
    streams = max(1, min(streams, n // chunk))
    seg = n // streams
    inputs, targets = ids[: streams * seg].view(streams, seg), ids[1 : streams * seg + 1].view(streams, seg)
    total, state = 0.0, None
    for start in range(0, seg, chunk):
        with autocast():
            logits, state = model(inputs[:, start : start + chunk], state)
        total += F.cross_entropy(logits.float().flatten(0, 1), targets[:, start : start + chunk].flatten(),
                                 reduction="sum").item()
        if on_progress is not None:
            on_progress(streams * min(start + chunk, seg))
    if streams * seg < n:
        tail_state = tuple(s[:, -1:].contiguous() for s in state)
        with autocast():
            logits, _ = model(ids[streams * seg : n].unsqueeze(0), tail_state)
        total += F.cross_entropy(logits.float()[0], ids[streams * seg + 1 : n + 1], reduction="sum").item()
    model.train(was_training)
    if on_progress is not None:
        on_progress(n)
    return total / n


def bits(nats: float) -> float:
    return nats / math.log(2)
