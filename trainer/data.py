"""Encoding a corpus and cutting it into parallel streams for truncated BPTT."""

from __future__ import annotations

import numpy as np
import torch

from models.errors import RnnbotError
from models.vocab import Vocab


def encode(vocab: Vocab, text: str) -> torch.Tensor:
    """Ids of every character of `text` as int64, vectorised (corpora have millions of chars)."""
    codes = np.frombuffer(text.encode("utf-32-le"), dtype=np.uint32)
    table_size = max(ord(c) for c in vocab.chars) + 1
    table = np.zeros(table_size, dtype=np.int64)  # 0 = unknown
    for i, c in enumerate(vocab.chars):
        table[ord(c)] = i
    ids = np.where(codes < table_size, table[np.minimum(codes, table_size - 1)], 0)
    return torch.from_numpy(ids)


class StreamBatcher:
    """B contiguous streams over the ids; each batch is the next `seq_len` chars of every stream.

    The model's hidden state is carried from one batch to the next, so stream b is read in
    order from start to end; at the end of an epoch all streams restart (and the state resets).
    """

    def __init__(self, ids: torch.Tensor, batch_size: int, seq_len: int):
        self.batch_size, self.seq_len = batch_size, seq_len
        seg = (len(ids) - 1) // batch_size
        if seg < seq_len:
            raise RnnbotError(
                f"training text has {len(ids)} characters: too few for {batch_size} streams of "
                f"{seq_len}-character windows; lower --batch-size or --seq-len"
            )
        self.inputs = ids[: batch_size * seg].view(batch_size, seg)
        self.targets = ids[1 : batch_size * seg + 1].view(batch_size, seg)
        self.windows_per_epoch = seg // seq_len
        self.epoch, self.window = 0, 0

    def next(self) -> tuple[torch.Tensor, torch.Tensor, bool]:
        """(inputs (B, T), targets (B, T), whether a new epoch started and the state must reset)."""
        reset = False
        if self.window >= self.windows_per_epoch:
            self.epoch, self.window, reset = self.epoch + 1, 0, True
        start = self.window * self.seq_len
        self.window += 1
        end = start + self.seq_len
        return self.inputs[:, start:end], self.targets[:, start:end], reset

    def state_dict(self) -> dict:
        return {"epoch": self.epoch, "window": self.window}

    def load_state_dict(self, state: dict) -> None:
        self.epoch, self.window = int(state["epoch"]), int(state["window"])
