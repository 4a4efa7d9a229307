"""The repository functions the poster adds, on SQLite and PostgreSQL."""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime, timedelta

import pytest

from db import repositories as repo
from db.errors import StateConflictError

CHANNEL = -1001234567890
SLOT = datetime(2030, 1, 1, 9, tzinfo=UTC)
SAMPLING = repo.SamplingParams(temperature=0.8, max_chars=281)


def add(db, text: str, model_name: str = "verses") -> int:
    with db.transaction() as session:
        return repo.add_generation(session, text=text, model_name=model_name, params=SAMPLING).id


def claim(db, generation_id: int, slot=SLOT) -> int:
    with db.transaction() as session:
        return repo.claim_post_slot(session, channel_id=CHANNEL, slot=slot, generation_id=generation_id).id


def test_only_one_racer_begins_a_send(fresh_db):
    post_id = claim(fresh_db, add(fresh_db, "1:1 a verse."))
    racers = 6
    start = threading.Barrier(racers)

    def begin(_) -> bool:
        start.wait()
        with fresh_db.transaction() as session:
            return repo.begin_post_send(session, post_id=post_id)

    with ThreadPoolExecutor(racers) as pool:
        wins = list(pool.map(begin, range(racers)))
    assert wins.count(True) == 1
    with fresh_db.transaction() as session:
        post = repo.get_post(session, post_id=post_id)
        assert post.status == "claimed" and post.sent_at is not None
        # Once a send began, only a "started before" failure applies, and only after that moment.
        assert not repo.fail_claimed_post(session, post_id=post_id, error="missed")
        assert not repo.fail_claimed_post(session, post_id=post_id, error="gone", started_before=post.sent_at)
        assert repo.fail_claimed_post(session, post_id=post_id, error="gone",
                                      started_before=post.sent_at + timedelta(seconds=2))
        assert not repo.begin_post_send(session, post_id=post_id)
    with fresh_db.transaction() as session:
        post = repo.get_post(session, post_id=post_id)
        assert (post.status, post.error) == ("failed", "gone")


def test_an_unstarted_claim_fails_once_and_cannot_then_be_sent(fresh_db):
    post_id = claim(fresh_db, add(fresh_db, "1:1 a verse."))
    with fresh_db.transaction() as session:
        assert repo.fail_claimed_post(session, post_id=post_id, error="missed: 1 slot")
        assert not repo.fail_claimed_post(session, post_id=post_id, error="again")
        assert not repo.begin_post_send(session, post_id=post_id)
        assert repo.get_post(session, post_id=post_id).error == "missed: 1 slot"


def test_an_unposted_slot_is_recorded_once_without_a_verse(fresh_db):
    with fresh_db.transaction() as session:
        post = repo.record_unposted_slot(session, channel_id=CHANNEL, slot=SLOT, error="missed: 1 slot")
        assert (post.status, post.generation, post.error) == ("failed", None, "missed: 1 slot")
        assert repo.record_unposted_slot(session, channel_id=CHANNEL, slot=SLOT, error="again") is None
    verse = add(fresh_db, "1:1 a verse for a taken slot.")
    with fresh_db.transaction() as session:
        assert repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=verse) is None  # taken
        assert repo.latest_post_slot(session, channel_id=CHANNEL) == SLOT
        assert repo.posted_texts(session) == []


def test_slots_texts_and_generation_statuses(fresh_db):
    first, second, third = (add(fresh_db, f"{n}:1 verse number {n}.") for n in (1, 2, 3))
    with fresh_db.transaction() as session:
        assert repo.latest_post_slot(session, channel_id=CHANNEL) is None
    sent, failed = claim(fresh_db, first), claim(fresh_db, second, SLOT + timedelta(hours=1))
    with fresh_db.transaction() as session:
        repo.mark_post_sent(session, post_id=sent, message_id=7)
        repo.mark_post_failed(session, post_id=failed, error="Forbidden")
    claim(fresh_db, third, SLOT - timedelta(hours=1))
    with fresh_db.transaction() as session:
        assert repo.latest_post_slot(session, channel_id=CHANNEL) == SLOT + timedelta(hours=1)
        assert repo.latest_post_slot(session, channel_id=CHANNEL - 1) is None
        statuses = [repo.get_generation(session, generation_id=g).status for g in (first, second, third)]
        assert statuses == ["posted", "rejected", "claimed"]
        assert repo.posted_texts(session) == ["3:1 verse number 3.", "2:1 verse number 2.", "1:1 verse number 1."]
        for generation in (first, second, third):  # none of them can be claimed again
            with pytest.raises(StateConflictError, match="not a candidate"):
                repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(days=1),
                                     generation_id=generation)
        assert repo.latest_post_slot(session, channel_id=CHANNEL) == SLOT + timedelta(hours=1)  # nothing written
        rejected = repo.reject_generation(session, generation_id=third, reason="posted before")
        assert rejected.status == "claimed"  # its post decides what becomes of it


def test_a_generation_once_claimed_is_never_a_candidate_again(fresh_db):
    """Whatever the outcome: a send that failed or timed out may still have reached the channel."""
    timed_out, interrupted = add(fresh_db, "1:1 a verse that timed out."), add(fresh_db, "1:2 a verse cut off.")
    timed_out_post = claim(fresh_db, timed_out)
    interrupted_post = claim(fresh_db, interrupted, SLOT + timedelta(hours=1))
    with fresh_db.transaction() as session:
        repo.begin_post_send(session, post_id=interrupted_post)
    with fresh_db.transaction() as session:
        repo.mark_post_failed(session, post_id=timed_out_post, error="Timed out after the request was sent")
        assert repo.fail_claimed_post(session, post_id=interrupted_post, error="interrupted while sending",
                                      started_before=SLOT + timedelta(days=3650))
    with fresh_db.transaction() as session:
        assert repo.candidate_generations(session) == []
        for generation_id in (timed_out, interrupted):
            generation = repo.get_generation(session, generation_id=generation_id)
            assert generation.status == "rejected" and "its post failed" in generation.reject_reason
        assert sorted(repo.posted_texts(session)) == ["1:1 a verse that timed out.", "1:2 a verse cut off."]
