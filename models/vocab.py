"""Character vocabulary: the code points of the training corpus plus an explicit unknown symbol."""

from __future__ import annotations

from dataclasses import dataclass

UNKNOWN = "\ufffd"  # U+FFFD REPLACEMENT CHARACTER, always id 0


@dataclass(frozen=True)
class Vocab:
    """Maps characters to 0-based ids; id 0 is the unknown symbol, the rest are sorted."""

    chars: tuple[str, ...]

    def __post_init__(self) -> None:
        if not all(isinstance(c, str) and len(c) == 1 for c in self.chars):
            raise ValueError("the vocabulary must be a list of single characters")
        if not self.chars or self.chars[0] != UNKNOWN:
            raise ValueError("vocabulary must start with the unknown symbol U+FFFD")
        if len(set(self.chars)) != len(self.chars):
            raise ValueError("vocabulary has duplicate characters")
        object.__setattr__(self, "_index", {c: i for i, c in enumerate(self.chars)})

    @classmethod
    def from_text(cls, text: str) -> Vocab:
        return cls((UNKNOWN, *sorted(set(text) - {UNKNOWN})))

    @classmethod
    def from_list(cls, chars: list[str]) -> Vocab:
        if not isinstance(chars, list):
            raise ValueError(f"the vocabulary must be a list, got {type(chars).__name__}")
        return cls(tuple(chars))

    def to_list(self) -> list[str]:
        return list(self.chars)

    def __len__(self) -> int:
        return len(self.chars)

    def __contains__(self, char: str) -> bool:
        return char in self._index

    def encode(self, text: str) -> list[int]:
        """Ids for `text`; characters outside the vocabulary become the unknown id 0."""
        index = self._index
        return [index.get(c, 0) for c in text]

    def unknown_chars(self, text: str) -> list[str]:
        """Distinct characters of `text` that the vocabulary lacks, in order of appearance."""
        return list(dict.fromkeys(c for c in text if c not in self._index))

    def decode(self, ids) -> str:
        chars = self.chars
        return "".join(chars[int(i)] for i in ids)
