"""The words each model's training corpus uses, for spotting words a model invented (/verse).

Loading a corpus takes a second or two, so each is read once per process, in whatever worker
thread asks first.
"""

from __future__ import annotations

import logging
import threading

from bot.scheduler.candidates import Lexicon
from models.generator import Generator
from trainer.corpora import CorpusError, load_corpus

log = logging.getLogger(__name__)

_lexicons: dict[str, Lexicon | None] = {}
_lock = threading.Lock()


def lexicon_for(generator: Generator) -> Lexicon | None:
    """The lexicon of the corpus the model was trained on; None when it cannot be loaded."""
    spec = generator.checkpoint.corpus if generator.checkpoint is not None else ""
    with _lock:
        if spec not in _lexicons:
            try:
                _lexicons[spec] = Lexicon.from_text(load_corpus(spec).text) if spec else None
            except CorpusError as exc:
                log.warning("no word list for %s (%s): its verses are not checked for invented words",
                            generator.name, exc)
                _lexicons[spec] = None
        return _lexicons[spec]
