"""Prompts with several completions, and retention."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import repositories as repo
from db.base import utcnow
from db.errors import InvalidInputError, NotFoundError
from tests.db.helpers import counts


@pytest.fixture
def ann(db) -> int:
    with db.transaction() as session:
        repo.upsert_user(session, user_id=1, username="ann")
        repo.upsert_chat(session, chat_id=1, type="private")
    return 1


def test_one_prompt_keeps_several_completions_with_their_parameters(db, ann):
    params = [repo.SamplingParams(temperature=t, max_chars=100, top_k=5, seed=7 + i)
              for i, t in enumerate((0.5, 0.8, 1.0))]
    with db.transaction() as session:
        prompt = repo.add_prompt(session, user_id=ann, chat_id=None, text="In the beginning")
        for i, p in enumerate(params):
            repo.add_completion(session, prompt_id=prompt.id, text=f" option {i}", model_name="kjv", params=p,
                                latency_ms=40.6)
    with db.transaction() as session:
        [stored] = repo.user_prompts(session, user_id=ann)
    assert stored.chat_id is None and stored.text == "In the beginning"
    assert [c.text for c in stored.completions] == [" option 0", " option 1", " option 2"]
    assert [(c.temperature, c.max_chars, c.top_k, c.top_p, c.seed) for c in stored.completions] == [
        (0.5, 100, 5, None, 7), (0.8, 100, 5, None, 8), (1.0, 100, 5, None, 9)]
    assert {c.latency_ms for c in stored.completions} == {41}
    assert stored.created_at.tzinfo is not None


def test_completion_for_a_missing_prompt_is_refused(db):
    with pytest.raises(NotFoundError), db.transaction() as session:
        repo.add_completion(session, prompt_id=12345, text="x", model_name="kjv",
                            params=repo.SamplingParams(temperature=1.0, max_chars=5))


def test_prune_deletes_old_prompts_with_their_completions_only(db, ann):
    params = repo.SamplingParams(temperature=1.0, max_chars=5)
    with db.transaction() as session:
        old = repo.add_prompt(session, user_id=ann, chat_id=1, text="old")
        repo.add_completion(session, prompt_id=old.id, text="o", model_name="kjv", params=params)
        old.created_at = utcnow() - timedelta(days=31)
        recent = repo.add_prompt(session, user_id=ann, chat_id=1, text="recent")
        repo.add_completion(session, prompt_id=recent.id, text="r", model_name="kjv", params=params)
        recent.created_at = utcnow() - timedelta(days=29)
    before = counts(db)
    with db.transaction() as session:
        assert repo.prune_older_than(session, days=30) == {"completions": 1, "prompts": 1}
    after = counts(db)
    assert (before["prompts"] - after["prompts"], before["completions"] - after["completions"]) == (1, 1)
    assert after["users"] == before["users"] and after["chats"] == before["chats"]
    with db.transaction() as session:
        assert [p.text for p in repo.user_prompts(session, user_id=ann)] == ["recent"]
        assert repo.prune_older_than(session, days=28) == {"completions": 1, "prompts": 1}


def test_prune_refuses_negative_days(db):
    with pytest.raises(ValueError, match="days must be >= 0"), db.transaction() as session:
        repo.prune_older_than(session, days=-1)


def test_a_request_is_recorded_once_with_its_outcome(db):
    sent = dict(request_id="a" * 32, user_id=5, username="eve", is_admin=False, chat=(5, "private", None),
                prompt="the quick ", outcome="sent", latency_ms=12,
                served=[repo.Served(" fox", "kjv", repo.SamplingParams(temperature=0.8, max_chars=40))])
    with db.transaction() as session:
        first = repo.record_exchange(session, **sent)
        again = repo.record_exchange(session, **sent)  # a write retried after an outage
        busy = repo.record_exchange(session, **{**sent, "request_id": "b" * 32, "outcome": "busy", "served": []})
        assert again.id == first.id and [c.text for c in first.completions] == [" fox"]
        assert (busy.outcome, busy.completions) == ("busy", [])
        with pytest.raises(InvalidInputError, match="outcome"):
            repo.record_exchange(session, **{**sent, "request_id": "c" * 32, "outcome": "maybe"})
    assert counts(db)["prompts"] == 2 and counts(db)["completions"] == 1
