"""Fine-tuning: a new run that starts from a trained checkpoint's weights on a new corpus.

    rnnbot train --init-from runs/kjv --corpus psalms.txt --run-dir runs/psalms --max-steps 500

What carries over: the weights, the vocabulary, and so the architecture (cell, layers, hidden,
embedding). What starts afresh: the optimizer, the learning-rate schedule (warm-up included), the
step count, and the run directory, which must be a new one. Characters of the new corpus that the
vocabulary lacks are read as the unknown symbol (id 0), as in generation; they are reported with
their counts, so a corpus that needs them can be trained from scratch instead.
"""

from __future__ import annotations

import logging
from collections import Counter
from pathlib import Path

from models.checkpoint import Checkpoint, load_checkpoint
from models.errors import RnnbotError
from models.vocab import Vocab
from trainer.config import TrainConfig

log = logging.getLogger(__name__)

ARCHITECTURE = ("cell", "layers", "hidden", "embedding")  # fixed by the checkpoint's weights
SHOWN_UNKNOWN = 20  # characters listed in the report; the totals count all of them


def initial_checkpoint(cfg: TrainConfig, explicit: set[str] = frozenset()) -> tuple[TrainConfig, Checkpoint]:
    """The checkpoint to start from, and `cfg` with its architecture. `explicit`: the options the
    user gave (flags, RNNBOT_*); one that contradicts the checkpoint is an error, not ignored."""
    ckpt = load_checkpoint(cfg.init_from)
    source = ckpt.path.resolve()
    if source.is_relative_to(Path(cfg.run_dir).resolve()):
        raise RnnbotError(f"--init-from {cfg.init_from} is inside --run-dir {cfg.run_dir}: a fine-tuned run "
                          "writes its own checkpoints, so give it a new --run-dir")
    wanted = {name: getattr(ckpt.config, name) for name in ARCHITECTURE}
    clashes = [f"--{name} {getattr(cfg, name)} (the checkpoint has {wanted[name]})"
               for name in ARCHITECTURE if name in explicit and getattr(cfg, name) != wanted[name]]
    if clashes:
        raise RnnbotError("fine-tuning keeps the checkpoint's architecture: leave out " + ", ".join(clashes))
    return cfg.with_changes(**wanted), ckpt


def unknown_characters(vocab: Vocab, text: str) -> Counter:
    """How often each character the vocabulary lacks occurs in `text`."""
    return Counter(c for c in text if c not in vocab)


def report_unknown(counts: Counter, checkpoint: str, corpus: str) -> None:
    if not counts:
        log.info("every character of %s is in the vocabulary of %s", corpus, checkpoint)
        return
    shown = ", ".join(f"{char!r} ×{n:,}" for char, n in counts.most_common(SHOWN_UNKNOWN))
    more = f" and {len(counts) - SHOWN_UNKNOWN} more" if len(counts) > SHOWN_UNKNOWN else ""
    log.warning("%s has %d distinct characters (%s in all) that the vocabulary of %s lacks; they are read "
                "as the unknown symbol: %s%s", corpus, len(counts), f"{counts.total():,}", checkpoint, shown, more)
