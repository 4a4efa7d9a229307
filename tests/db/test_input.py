"""Bad input is cleaned (NUL, lone surrogates) or refused (too long, wrong type) at the boundary."""

from __future__ import annotations

import pytest

from db import repositories as repo
from db.cleaning import DEFAULT_MAX_PROMPT_CHARS, clean_prompt
from db.errors import InvalidInputError, PromptTooLongError
from models.errors import RnnbotError
from tests.db.helpers import SAMPLING, counts


@pytest.fixture
def user(db) -> int:
    with db.transaction() as session:
        repo.upsert_user(session, user_id=5, username="ann")
    return 5


def stored_prompt(db, user, text, **kwargs) -> str:
    """The prompt's text as read back from the database."""
    with db.transaction() as session:
        repo.add_prompt(session, user_id=user, text=text, **kwargs)
    with db.transaction() as session:
        return repo.user_prompts(session, user_id=user)[0].text


def test_nul_characters_are_stripped(db, user):
    assert stored_prompt(db, user, "in the\x00 beginning\x00") == "in the beginning"


def test_lone_surrogates_become_replacement_characters(db, user):
    assert stored_prompt(db, user, "a\ud800b\udfffc") == "a\ufffdb\ufffdc"


def test_emoji_and_other_scripts_round_trip(db, user):
    text = "🦊 Ωmega 𝔘𝔫𝔦𝔠𝔬𝔡𝔢 中文 👩‍👩‍👧"
    assert stored_prompt(db, user, text) == text


def test_length_limit_counts_characters_not_bytes(db, user):
    at_limit = "🦊" * DEFAULT_MAX_PROMPT_CHARS  # 4 bytes each in UTF-8
    assert stored_prompt(db, user, at_limit) == at_limit


def test_oversized_prompt_is_refused_and_nothing_is_written(db):
    before = counts(db)
    with pytest.raises(PromptTooLongError, match="4097 characters long; the maximum is 4096") as info:
        with db.transaction() as session:
            repo.upsert_user(session, user_id=6, username="bob")
            repo.add_prompt(session, user_id=6, text="x" * 4097)
    assert isinstance(info.value, RnnbotError)
    assert counts(db) == before  # the user row of the same transaction was rolled back too


def test_prompt_limit_is_configurable(db, user):
    with pytest.raises(PromptTooLongError), db.transaction() as session:
        repo.add_prompt(session, user_id=user, text="twelve chars", max_chars=10)
    assert stored_prompt(db, user, "twelve chars", max_chars=12) == "twelve chars"


def test_nul_characters_do_not_count_towards_the_limit():
    assert clean_prompt("ab\x00\x00", max_chars=2) == "ab"


def test_completions_and_generations_are_cleaned_too(db, user):
    with db.transaction() as session:
        prompt = repo.add_prompt(session, user_id=user, text="p")
        completion = repo.add_completion(session, prompt_id=prompt.id, text="c\x00\ud83d", model_name="kjv",
                                         params=SAMPLING)
        generation = repo.add_generation(session, text="\x00g", model_name="kjv", params=SAMPLING)
    assert (completion.text, generation.text) == ("c\ufffd", "g")


@pytest.mark.parametrize("call, message", [
    (lambda s: repo.add_prompt(s, user_id=5, text=b"bytes"), "prompt must be text"),
    (lambda s: repo.add_prompt(s, user_id="5", text="x"), "user id must be a 64-bit integer"),
    (lambda s: repo.upsert_user(s, user_id=2**63), "user id must be a 64-bit integer"),
    (lambda s: repo.upsert_chat(s, chat_id=1, type="forum"), "chat type must be one of"),
    (lambda s: repo.update_user_settings(s, user_id=5, temperature=-1), "temperature must be >= 0"),
    (lambda s: repo.update_user_settings(s, user_id=5, length=0), "length must be >= 1"),
    (lambda s: repo.update_user_settings(s, user_id=5, temperature=float("nan")), "finite"),
    (lambda s: repo.add_generation(s, text="x", model_name="m", params=SAMPLING, status="posted!"),
     "status must be one of"),
    (lambda s: repo.SamplingParams(temperature=0.8, max_chars=0), "max_chars must be >= 1"),
    (lambda s: repo.SamplingParams(temperature=0.8, max_chars=9, top_p=0), r"top_p must be in \(0, 1\]"),
])
def test_invalid_values_are_refused_with_a_clear_error(db, user, call, message):
    with pytest.raises(InvalidInputError, match=message), db.transaction() as session:
        call(session)


def test_telegram_ids_are_64_bit(db):
    big_user, big_chat = 2**62 + 3, -(2**62) - 5
    with db.transaction() as session:
        repo.upsert_user(session, user_id=big_user)
        repo.upsert_chat(session, chat_id=big_chat, type="supergroup", title="big")
        repo.add_prompt(session, user_id=big_user, chat_id=big_chat, text="hi")
    with db.transaction() as session:
        prompt = repo.user_prompts(session, user_id=big_user)[0]
        assert (prompt.user_id, prompt.chat_id) == (big_user, big_chat)
