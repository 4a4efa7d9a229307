"""The text `neurons find` measures on: held-out text the model was not trained on."""

from __future__ import annotations

from models.checkpoint import Checkpoint
from models.errors import RnnbotError
from neurons.features import code_start
from trainer.corpora import BUILTIN, load_corpus


def held_out_text(checkpoint: Checkpoint, corpus: str | None, chars: int,
                  features: str = "auto") -> tuple[str, str, bool]:
    """(text, a description of it, whether to use the code features).

    A built-in corpus, or the corpus the checkpoint was trained on, gives its validation split
    (the tail the trainer held out); any other file is used whole. Then the first `chars`.
    """
    if chars < 100:
        raise RnnbotError(f"--chars must be at least 100, got {chars}")
    spec = corpus or checkpoint.corpus
    if not spec:
        raise RnnbotError("this checkpoint does not name its corpus: pass --corpus")
    loaded = load_corpus(spec)
    if spec in BUILTIN or spec == checkpoint.corpus:
        _, text = loaded.split(checkpoint.extra.get("val_fraction", 0.1))
        where = "validation split"
    else:
        text, where = loaded.text, "text"
    code = {"auto": spec == "python-src" or spec.endswith(".py"), "code": True, "prose": False}[features]
    if code:
        text = text[code_start(text):]
    text = text[:chars]
    return text, f"{loaded.name} {where}, first {len(text):,} characters", code
