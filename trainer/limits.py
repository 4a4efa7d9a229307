"""Can this machine train the model the flags describe? Checked before anything is allocated, so
`--hidden 100000` is one clear line, not a 160 GB allocation and a traceback."""

from __future__ import annotations

import os
from pathlib import Path

from models.errors import RnnbotError
from trainer.config import TrainConfig

GATES = {"lstm": 4, "gru": 3, "rnn": 1}
BYTES_PER_PARAMETER = 16  # fp32 weights, gradients and AdamW's two moments


def parameter_count(cfg: TrainConfig, vocab_size: int) -> int:
    gates, hidden, embedding = GATES[cfg.cell], cfg.hidden, cfg.embedding or cfg.hidden
    layers = sum(gates * hidden * ((embedding if layer == 0 else hidden) + hidden + 2) for layer in range(cfg.layers))
    return vocab_size * embedding + layers + hidden * vocab_size + vocab_size


def training_bytes(cfg: TrainConfig, vocab_size: int) -> int:
    """A lower bound on what training needs: parameters with their optimizer state, plus one
    batch's activations (each layer's gates and states, the logits and their gradient)."""
    positions = cfg.batch_size * cfg.seq_len
    activations = positions * (cfg.layers * cfg.hidden * (GATES[cfg.cell] + 2) + 2 * vocab_size) * 4
    return parameter_count(cfg, vocab_size) * BYTES_PER_PARAMETER + activations


def machine_memory() -> int | None:
    """The machine's memory, or a container's limit (cgroup v2) when that is lower."""
    try:
        total = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES")
    except (ValueError, OSError, AttributeError):
        return None
    try:
        limit = Path("/sys/fs/cgroup/memory.max").read_text().strip()
    except OSError:
        return total
    return min(total, int(limit)) if limit.isdecimal() else total


def check_memory(cfg: TrainConfig, vocab_size: int) -> None:
    needed, available = training_bytes(cfg, vocab_size), machine_memory()
    if available is not None and needed > available:
        sizes = (f"--cell {cfg.cell} --layers {cfg.layers} --hidden {cfg.hidden} --embedding {cfg.embedding} "
                 f"--batch-size {cfg.batch_size} --seq-len {cfg.seq_len}")
        raise RnnbotError(f"{sizes} need about {needed / 1e9:,.0f} GB of memory to train; this machine has "
                          f"{available / 1e9:,.0f} GB: choose smaller sizes")


def check_run_dir(run_dir: str) -> None:
    """The run directory can be created and written (before the corpus is read)."""
    path = Path(run_dir).absolute()
    existing = next(p for p in (path, *path.parents) if p.exists())
    if not existing.is_dir():
        raise RnnbotError(f"--run-dir {run_dir} cannot be written: {existing} is not a directory")
    if not os.access(existing, os.W_OK | os.X_OK):
        raise RnnbotError(f"--run-dir {run_dir} cannot be written: no permission to write in {existing}")
