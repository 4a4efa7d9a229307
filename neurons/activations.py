"""Run a model over a text and record every cell's value after each character.

The text is stepped one character at a time through `Generator.trace`, the step that produces
every generated character, so the recorded states are the states generation has after burning
in the same text (tests/neurons check this against the model run on each whole prefix). A long
text can be read as several parallel streams, each a contiguous slice starting from the zero
state, as a prompt would.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass

import numpy as np
import torch

from models.errors import RnnbotError
from models.generator import Generator

VALUES = ("tanh_c", "h")  # what a "cell's activation" means: tanh of the LSTM cell state, or h


@dataclass
class Activations:
    text: str
    h: np.ndarray  # (T, L, H) each layer's hidden output after reading text[t]
    tanh_c: np.ndarray | None  # (T, L, H) tanh of each LSTM cell state after text[t]; None for GRU/RNN
    top_ids: np.ndarray | None = None  # (T, K) likeliest next characters after text[t]
    top_probs: np.ndarray | None = None  # (T, K) their probabilities

    @property
    def layers(self) -> int:
        return self.h.shape[1]

    @property
    def hidden(self) -> int:
        return self.h.shape[2]

    def values(self, value: str) -> np.ndarray:
        """(T, L, H) activations of kind `value` ("tanh_c" or "h"), all in [-1, 1]."""
        check_value(value, self.tanh_c is not None)
        return self.tanh_c if value == "tanh_c" else self.h

    def cell(self, layer: int, cell: int, value: str) -> np.ndarray:
        """(T,) one cell's activation after each character."""
        check_cell(layer, cell, self.layers, self.hidden)
        return self.values(value)[:, layer, cell]

    def slice(self, start: int, stop: int) -> Activations:
        def cut(a):
            return None if a is None else a[start:stop]
        return Activations(self.text[start:stop], self.h[start:stop], cut(self.tanh_c),
                           cut(self.top_ids), cut(self.top_probs))


def default_value(generator: Generator) -> str:
    return "tanh_c" if generator.model.is_lstm else "h"


def check_value(value: str, is_lstm: bool) -> None:
    if value not in VALUES:
        raise RnnbotError(f"unknown value {value!r}: choose tanh_c or h")
    if value == "tanh_c" and not is_lstm:
        raise RnnbotError("tanh_c is the LSTM cell state; this model has no cell state: use h")


def check_cell(layer: int, cell: int, layers: int, hidden: int) -> None:
    if not 0 <= layer < layers:
        raise RnnbotError(f"layer {layer} is out of range: this model has {layers} layer"
                          f"{'s' if layers > 1 else ''} (0-{layers - 1})")
    if not 0 <= cell < hidden:
        raise RnnbotError(f"cell {cell} is out of range: each layer has {hidden} cells (0-{hidden - 1})")


@torch.inference_mode()
def record(generator: Generator, text: str, streams: int = 1, top_k: int = 0,
           on_progress: Callable[[int], None] | None = None) -> Activations:
    """Read `text` from the zero state and record each layer's h (and tanh(c)) after every char.

    With streams > 1 the text is cut into that many equal contiguous slices read side by side
    (each from the zero state; a tail shorter than a slice is dropped). top_k > 0 also keeps the
    k likeliest next characters after each character. `on_progress(n)` hears how many characters
    are read so far.
    """
    if not text:
        raise RnnbotError("the text is empty")
    streams = max(1, min(streams, len(text)))
    steps = len(text) // streams
    text = text[: steps * streams]
    ids = torch.tensor(generator.vocab.encode(text)).view(streams, steps)  # row s = slice s
    cfg = generator.model.config
    is_lstm = generator.model.is_lstm
    shape = (steps, cfg.layers, streams, cfg.hidden)
    h = torch.empty(shape)
    c = torch.empty(shape) if is_lstm else None
    k = min(top_k, len(generator.vocab))
    top_ids = torch.empty(steps, streams, k, dtype=torch.long) if k else None
    top_probs = torch.empty(steps, streams, k) if k else None
    for t, (logits, state) in enumerate(generator.trace(ids)):
        h[t] = state[0]
        if is_lstm:
            c[t] = state[1]
        if k:
            logits[:, 0] = float("-inf")  # generation never emits the unknown symbol
            top_probs[t], top_ids[t] = torch.softmax(logits, -1).topk(k, -1)
        if on_progress is not None and (t + 1) % 64 == 0:
            on_progress((t + 1) * streams)
    if on_progress is not None:
        on_progress(steps * streams)

    def by_char(a: torch.Tensor | None, stream_dim: int) -> np.ndarray | None:
        # (steps, ..., streams, ...) -> (streams * steps, ...): slice s's characters in order.
        if a is None:
            return None
        a = a.movedim(stream_dim, 0)
        return a.reshape(streams * steps, *a.shape[2:]).numpy()

    return Activations(text, by_char(h, 2), by_char(c.tanh() if is_lstm else None, 2),
                       by_char(top_ids, 1), by_char(top_probs, 1))
