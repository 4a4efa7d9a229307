"""Choosing what to post: one complete, new verse line, scored by the model.

A candidate must be a single, finished `chapter:verse text` line that ends a sentence (. ! or ?,
optionally followed by a closing bracket or quote; a KJV verse ending in , ; or : reads as cut
off when posted alone) and fits the length bounds. Every word in it must occur in the training
corpus (POST_MAX_UNKNOWN_WORDS allows a few: a char-level model also invents words, "stretter",
"solates"), yet it must not copy the corpus (no whole verse, and no 8-word or 40-character span
found in it: we post new text, not memorised verses) and must not have been posted before.
"""

from __future__ import annotations

import re
from dataclasses import dataclass

VERSE = re.compile(r"^(\d{1,3}):(\d{1,3}) (\S.*\S)$")
WORD = re.compile(r"[^\W_]+(?:'[^\W_]+)*")  # letters and digits; "LORD's" is one word
END_PUNCTUATION = ".!?"
CLOSING = ")]\"'’”"


@dataclass(frozen=True)
class Verdict:
    ok: bool
    reason: str | None = None  # why it was rejected


class Lexicon:
    """The words of a corpus, in lower case: a generated word outside it is an invented one."""

    def __init__(self, words: list[str]):
        self.words = frozenset(words)

    @classmethod
    def from_text(cls, text: str) -> Lexicon:
        return cls(_words(text))

    def unknown(self, text: str) -> list[str]:
        """The words of `text` that never occur in the corpus, in order, each once."""
        return list(dict.fromkeys(w for w in _words(text) if w not in self.words))


class CorpusIndex:
    """Finds spans a text shares verbatim with the corpus, without indexing every position.

    Any common span of 2k characters (or 2k words) contains a whole corpus block of k that
    starts at a multiple of k, so only those aligned blocks are hashed; a candidate window that
    hits a block is then confirmed by a substring search.
    """

    def __init__(self, corpus_text: str, span_chars: int = 40, span_words: int = 8):
        self.span_chars, self.span_words = span_chars, span_words
        self.text = corpus_text
        # Whole verses too, for the short ones no 8-word or 40-char span can catch ("Jesus wept.").
        self.verses = {normalise(line) for line in corpus_text.splitlines() if line.strip()}
        k = span_chars // 2
        self._char_blocks = {hash(corpus_text[i : i + k]) for i in range(0, len(corpus_text) - k + 1, k)}
        words = _words(corpus_text)
        self.lexicon = Lexicon(words)
        self._joined_words = " " + " ".join(words) + " "
        kw = span_words // 2
        self._word_blocks = {hash(" ".join(words[i : i + kw])) for i in range(0, len(words) - kw + 1, kw)}

    def copied_chars(self, text: str) -> str | None:
        """A span of `span_chars` characters found verbatim in the corpus, if any."""
        n, k = self.span_chars, self.span_chars // 2
        for p in range(0, len(text) - k + 1):
            if hash(text[p : p + k]) in self._char_blocks:
                for q in range(max(0, p - (n - k)), min(p, len(text) - n) + 1):
                    if text[q : q + n] in self.text:
                        return text[q : q + n]
        return None

    def copied_words(self, text: str) -> str | None:
        """A span of `span_words` words found in the corpus, if any (ignoring case and punctuation:
        a memorised phrase with a comma moved is still a copy)."""
        words = _words(text)
        n, k = self.span_words, self.span_words // 2
        for p in range(0, len(words) - k + 1):
            if hash(" ".join(words[p : p + k])) in self._word_blocks:
                for q in range(max(0, p - (n - k)), min(p, len(words) - n) + 1):
                    phrase = " ".join(words[q : q + n])
                    if f" {phrase} " in self._joined_words:
                        return phrase
        return None


def _words(text: str) -> list[str]:
    return WORD.findall(text.lower())


def check_candidate(text: str, *, min_chars: int, max_chars: int, corpus: CorpusIndex | None,
                    posted_before: set[str] | frozenset[str] = frozenset(), finished: bool = True,
                    max_unknown_words: int = 0) -> Verdict:
    """Whether `text` may be posted. `finished` is False when the model was cut off at its length
    limit before ending the line (the text may still happen to end in a full stop). Without a
    corpus (POST_CORPUS=none) neither the copy check nor the unknown-word check runs;
    `max_unknown_words` < 0 turns the latter off."""
    line = text.strip()
    if not finished:
        return Verdict(False, f"too long: the line did not end within {max_chars} chars")
    if "\n" in line:
        return Verdict(False, "more than one line")
    match = VERSE.match(line)
    if not match:
        return Verdict(False, "not a chapter:verse line")
    if line.rstrip(CLOSING)[-1:] not in END_PUNCTUATION:
        return Verdict(False, "incomplete: does not end a sentence (. ! or ?)")
    if len(line) < min_chars:
        return Verdict(False, f"too short ({len(line)} < {min_chars} chars)")
    if len(line) > max_chars:
        return Verdict(False, f"too long ({len(line)} > {max_chars} chars)")
    if normalise(line) in posted_before:
        return Verdict(False, "posted before")
    body = match.group(3)
    if corpus is not None:
        unknown = corpus.lexicon.unknown(body) if max_unknown_words >= 0 else []
        if max_unknown_words >= 0 and len(unknown) > max_unknown_words:
            shown = ", ".join(repr(w) for w in unknown[:3])
            return Verdict(False, f"words not in the corpus: {shown}")
        if normalise(line) in corpus.verses:
            return Verdict(False, "copies a corpus verse")
        copied = corpus.copied_words(body)
        if copied:
            return Verdict(False, f"copies the corpus ({corpus.span_words} words: {copied!r})")
        copied = corpus.copied_chars(body)
        if copied:
            return Verdict(False, f"copies the corpus ({corpus.span_chars} chars: {copied!r})")
    return Verdict(True)


def normalise(line: str) -> str:
    """What counts as the same post: the verse text, ignoring the chapter:verse number and spacing."""
    match = VERSE.match(line.strip())
    body = match.group(3) if match else line
    return " ".join(body.split()).lower()


def score(line: str, mean_logprob: float, target_chars: int = 140) -> float:
    """Higher is better: fluent under the model (mean log-prob per char) and near the target length."""
    length_penalty = abs(len(line) - target_chars) / (4 * target_chars)
    return mean_logprob - length_penalty
