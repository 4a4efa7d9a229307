"""TrainConfig: every knob of a training run, declared once (the CLI builds its flags from it)."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace

from models.choices import DEVICE_HELP, TRAIN_PRECISIONS
from models.errors import RnnbotError


def opt(default, help: str, **extra):
    """A config field with its CLI help text."""
    return field(default=default, metadata={"help": help, **extra})


@dataclass(frozen=True)
class TrainConfig:
    # data
    corpus: str = opt("kjv", "kjv, python-src, or a UTF-8 text file, directory or glob")
    book_names: bool = opt(False, "KJV only: prefix each verse with its book name")
    val_fraction: float = opt(0.1, "contiguous tail of the corpus held out for validation")
    run_dir: str = opt("runs/kjv", "where checkpoints, metrics, samples and plots go")
    # model
    cell: str = opt("lstm", "recurrent cell", choices=("lstm", "gru", "rnn"), aliases=("--model",))
    layers: int = opt(2, "stacked recurrent layers")
    hidden: int = opt(256, "units per layer")
    embedding: int = opt(64, "embedding width (0 = same as --hidden)")
    dropout: float = opt(0.0, "dropout between layers and before the head")
    init_from: str | None = opt(None, "fine-tune: start from this checkpoint (or run directory) with its "
                                      "weights, vocabulary and architecture; fresh optimizer and schedule")
    # optimisation
    seq_len: int = opt(64, "characters per truncated-BPTT window")
    batch_size: int = opt(32, "parallel streams (hidden state carried between batches)")
    lr: float = opt(4e-3, "peak learning rate (AdamW)")
    min_lr_ratio: float = opt(0.01, "final learning rate as a fraction of --lr")
    schedule: str = opt("cosine", "learning-rate decay after warm-up", choices=("cosine", "step"))
    warmup_steps: int = opt(50, "linear warm-up steps")
    weight_decay: float = opt(0.01, "AdamW weight decay (matrices only)")
    grad_clip: float = opt(1.0, "clip the gradient norm to this (0 = off)")
    precision: str = opt("auto", "auto: bf16 autocast where the CPU or GPU has native bf16, else fp16 with a "
                                 "gradient scaler on a GPU, else fp32", choices=TRAIN_PRECISIONS)
    device: str = opt("auto", DEVICE_HELP)
    seed: int = opt(1, "random seed (weights, dropout)")
    threads: int = opt(0, "torch threads (0 = torch's default)")
    # how long
    max_steps: int | None = opt(None, "stop after this many steps in total")
    max_minutes: float | None = opt(None, "time budget for the whole run, final evaluation included")
    stop_after: int | None = opt(None, "pause after this many steps in this invocation "
                                       "(schedule unchanged; resume later)")
    # evaluation and outputs
    eval_every: int = opt(1000, "evaluate on the whole validation split every N steps")
    log_every: int = opt(10, "write a training metrics line every N steps")
    sample_chars: int = opt(200, "characters per sample taken at each evaluation")
    database_url: str | None = opt(None, "also record the run and its samples in this database")

    def __post_init__(self) -> None:
        positive = ("layers", "hidden", "seq_len", "batch_size", "eval_every", "log_every", "sample_chars")
        for name in positive:
            if getattr(self, name) < 1:
                raise RnnbotError(f"--{name.replace('_', '-')} must be at least 1, got {getattr(self, name)}")
        if self.lr <= 0 or not self.lr < float("inf"):
            raise RnnbotError(f"--lr must be a positive number, got {self.lr}")
        for name in ("grad_clip", "weight_decay"):
            if not 0 <= getattr(self, name) < float("inf"):  # nan fails both comparisons
                raise RnnbotError(f"--{name.replace('_', '-')} must be a finite number >= 0, got {getattr(self, name)}")
        if not 0 <= self.min_lr_ratio <= 1:
            raise RnnbotError(f"--min-lr-ratio must be a finite number in [0, 1], got {self.min_lr_ratio}")
        if not 0 < self.val_fraction < 1:
            raise RnnbotError(f"--val-fraction must be a number in (0, 1), got {self.val_fraction}")
        for name in ("warmup_steps", "threads", "embedding"):
            if getattr(self, name) < 0:
                raise RnnbotError(f"--{name.replace('_', '-')} must be at least 0, got {getattr(self, name)}")
        if self.stop_after is not None and self.stop_after < 1:
            raise RnnbotError(f"--stop-after must be at least 1, got {self.stop_after}")
        if not 0 <= self.dropout < 1:
            raise RnnbotError(f"--dropout must be in [0, 1), got {self.dropout}")
        if self.max_steps is not None and self.max_steps < 1:
            raise RnnbotError(f"--max-steps must be at least 1, got {self.max_steps}")
        if self.max_minutes is not None and not self.max_minutes > 0:
            raise RnnbotError(f"--max-minutes must be positive, got {self.max_minutes}")
        for name in ("cell", "schedule", "precision"):
            choices = next(f for f in fields(self) if f.name == name).metadata["choices"]
            if getattr(self, name) not in choices:
                raise RnnbotError(f"--{name} must be one of {', '.join(choices)}, got {getattr(self, name)!r}")

    def to_dict(self) -> dict:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in known})

    def with_changes(self, **changes) -> TrainConfig:
        return replace(self, **changes)
