"""The candidate filter: one complete, new verse line within the length bounds, or a reason why not."""

from __future__ import annotations

import pytest

from bot.scheduler.candidates import CorpusIndex, check_candidate, normalise, score
from trainer.corpora import load_corpus

GOOD = "24:3 And the lamb spake unto the river of stones, and the river was glad."


@pytest.fixture(scope="module")
def kjv() -> CorpusIndex:
    return CorpusIndex(load_corpus("kjv").text)


def check(text: str, corpus=None, **options):
    return check_candidate(text, **{"min_chars": 20, "max_chars": 280, "corpus": corpus, **options})


def test_a_good_new_verse_is_accepted(kjv):
    assert check(GOOD, kjv).ok
    assert check("  " + GOOD + "\n", kjv).ok  # surrounding whitespace is not part of the verse
    assert check("5:12 Why hath the king of the hills forgotten his bread? (Selah.)", kjv).ok


@pytest.mark.parametrize("memorised", [
    "1:1 In the beginning God created the heaven and the earth.",  # a whole verse
    "7:7 Jesus wept.",  # a short one, under any span length, under another number
    "9:9 And the lamb spake. And God said, Let there be light: and there was a new song.",  # 8 words copied
])
def test_memorised_verses_are_rejected(kjv, memorised):
    verdict = check(memorised, kjv, min_chars=5)
    assert not verdict.ok and verdict.reason.startswith("copies a corpus verse" if "wept" in memorised
                                                        or "beginning" in memorised else "copies the corpus")


def test_copy_spans_are_exact_lengths():
    # tiny corpora: the invented-word check (tested below) would reject every line, so it is off here
    corpus = CorpusIndex("1:1 alpha beta gamma delta epsilon zeta eta theta iota kappa.\n", span_chars=40,
                         span_words=8)
    seven = "2:2 alpha beta gamma delta epsilon zeta eta, and more."
    eight = "2:2 alpha beta gamma delta epsilon zeta eta theta, and more."
    assert check(seven, corpus, max_unknown_words=-1).ok
    assert (check(eight, corpus, max_unknown_words=-1).reason
            == "copies the corpus (8 words: 'alpha beta gamma delta epsilon zeta eta theta')")
    chars = CorpusIndex("1:1 " + "abcdefghij" * 3 + "XYZ0123456789\n", span_chars=40, span_words=100)
    assert check("3:3 q" + "abcdefghij" * 3 + "XYZ012345 q.", chars, max_unknown_words=-1).ok  # 39 chars in common
    verdict = check("3:3 q" + "abcdefghij" * 3 + "XYZ0123456 q.", chars, max_unknown_words=-1)  # 40 chars in common
    assert not verdict.ok and verdict.reason.startswith("copies the corpus (40 chars")


def test_over_long_and_short_lines_are_rejected():
    long = "1:1 " + "and the river went on " * 15 + "for ever."
    assert check(long).reason == f"too long ({len(long)} > 280 chars)"
    assert check("1:1 Go.").reason == "too short (7 < 20 chars)"
    # The model ran out of characters before ending the line: too long, even if it stops on a full stop.
    assert check(GOOD, finished=False).reason == "too long: the line did not end within 280 chars"


@pytest.mark.parametrize("text, reason", [
    ("24:3 And the lamb spake unto the river of stones, and", "incomplete: does not end a sentence (. ! or ?)"),
    ("24:3 And the lamb spake unto the river of stones;", "incomplete: does not end a sentence (. ! or ?)"),
    ("And the lamb spake unto the river of stones.", "not a chapter:verse line"),
    ("24:3And the lamb spake unto the river of stones.", "not a chapter:verse line"),
    ("24:3 And the lamb spake.\n24:4 And the river.", "more than one line"),
    ("", "not a chapter:verse line"),
])
def test_incomplete_or_malformed_lines_are_rejected(text, reason):
    assert check(text).reason == reason


def test_posted_before_ignores_the_number_and_spacing():
    posted = {normalise("1:1 And  the lamb spake unto the river of stones, and the river was glad.")}
    assert check(GOOD, posted_before=posted).reason == "posted before"


def test_score_prefers_fluent_lines_near_the_target_length():
    assert score("x" * 140, -1.0) > score("x" * 40, -1.0)
    assert score("x" * 140, -1.0) > score("x" * 140, -1.5)


@pytest.mark.parametrize("invented", [
    "24:3 And the lamb spake unto the stretter of stones, and the river was glad.",
    "24:3 And the LORD solates the river of stones, and the lamb was glad.",
])
def test_a_verse_with_an_invented_word_is_rejected(kjv, invented):
    verdict = check(invented, kjv)
    assert not verdict.ok and verdict.reason.startswith("words not in the corpus")
    assert ("stretter" in verdict.reason) or ("solates" in verdict.reason)
    # POST_MAX_UNKNOWN_WORDS=1 lets one through; -1 turns the check off
    assert check(invented, kjv, max_unknown_words=1).ok and check(invented, kjv, max_unknown_words=-1).ok


def test_the_word_check_ignores_case_and_possessives(kjv):
    assert kjv.lexicon.unknown("And the LORD's sheep, O Israel; the Lord's lamb.") == []
    assert kjv.lexicon.unknown("sharied wickes and sharied") == ["sharied", "wickes"]
