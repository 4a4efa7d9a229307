"""Posting: a (channel, slot) pair is claimed once, even by racing connections."""

from __future__ import annotations

import threading
import time
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timedelta, timezone

import pytest

from db import repositories as repo
from db.errors import InvalidInputError
from tests.db.helpers import CHANNEL, SLOT, add_candidate, counts


def test_a_slot_is_claimed_once_per_channel(db):
    first, second, third = add_candidate(db, "first"), add_candidate(db, "second"), add_candidate(db, "third")
    with db.transaction() as session:
        post = repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=first)
        assert (post.status, post.generation_id, post.slot) == ("claimed", first, SLOT)
        assert repo.get_chat(session, chat_id=CHANNEL).type == "channel"
        assert repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=second) is None
        same_instant = SLOT.astimezone(timezone(timedelta(hours=-5)))
        assert repo.claim_post_slot(session, channel_id=CHANNEL, slot=same_instant, generation_id=second) is None
        assert repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(microseconds=300),
                                    generation_id=second) is None  # slots have second precision
        assert repo.get_generation(session, generation_id=second).status == "candidate"  # a lost race keeps it
        assert repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(hours=1),
                                    generation_id=second) is not None
        assert repo.claim_post_slot(session, channel_id=CHANNEL - 1, slot=SLOT, generation_id=third) is not None
    assert counts(db)["posts"] == 3


def test_slots_must_be_timezone_aware(db):
    generation = add_candidate(db)
    with pytest.raises(InvalidInputError, match="timezone-aware"), db.transaction() as session:
        repo.claim_post_slot(session, channel_id=CHANNEL, slot=datetime(2030, 1, 1, 9), generation_id=generation)


def test_racing_connections_claim_a_slot_exactly_once(fresh_db):
    """Several threads, each on its own pooled connection, claim the same slot at the same moment."""
    contenders = 6
    generations = [add_candidate(fresh_db, f"text {i}") for i in range(contenders)]
    start = threading.Barrier(contenders)
    connections = set()

    def claim(generation_id: int) -> bool:
        start.wait()
        with fresh_db.transaction() as session:
            connections.add(id(session.connection().connection.dbapi_connection))
            post = repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=generation_id)
            time.sleep(0.05)  # hold the transaction open, so the others collide with an uncommitted claim
            return post is not None

    with ThreadPoolExecutor(contenders) as pool:
        wins = list(pool.map(claim, generations))
    assert len(connections) == contenders
    assert wins.count(True) == 1
    with fresh_db.transaction() as session:
        [post] = repo.recent_posts(session)
        assert post.generation_id == generations[wins.index(True)]


def test_sent_and_failed_posts(db):
    sent_gen, failed_gen = add_candidate(db, "sent text"), add_candidate(db, "failed text")
    with db.transaction() as session:
        sent = repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=sent_gen)
        failed = repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(hours=1),
                                      generation_id=failed_gen)
    with db.transaction() as session:
        repo.mark_post_sent(session, post_id=sent.id, message_id=2**40)
        repo.mark_post_failed(session, post_id=failed.id, error="Forbidden: bot is not a member\x00")
    with db.transaction() as session:
        sent, failed = repo.get_post(session, post_id=sent.id), repo.get_post(session, post_id=failed.id)
        assert (sent.status, sent.message_id, sent.error) == ("sent", 2**40, None)
        assert sent.sent_at is not None and sent.generation.status == "posted"
        assert (failed.status, failed.error) == ("failed", "Forbidden: bot is not a member")
        assert repo.get_generation(session, generation_id=failed_gen).status == "rejected"  # never a candidate again
        with pytest.raises(InvalidInputError, match="already sent"):
            repo.mark_post_sent(session, post_id=sent.id, message_id=1)


def test_unsent_recent_and_was_posted(db):
    gens = [add_candidate(db, text) for text in ("one", "two", "three")]
    with db.transaction() as session:
        posts = [repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(hours=i), generation_id=g)
                 for i, g in enumerate(gens)]
        repo.mark_post_sent(session, post_id=posts[0].id, message_id=10)
    with db.transaction() as session:
        assert [p.id for p in repo.unsent_posts(session)] == [posts[1].id, posts[2].id]
        assert repo.unsent_posts(session, channel_id=CHANNEL - 1) == []
        recent = repo.recent_posts(session, limit=2)
        assert [p.generation.text for p in recent] == ["three", "two"]
        assert repo.was_posted(session, text="one") and repo.was_posted(session, text="one", channel_id=CHANNEL)
        assert not repo.was_posted(session, text="one", channel_id=CHANNEL - 1)
        assert not repo.was_posted(session, text="two")  # claimed, not sent


def test_candidates_and_rejections(db):
    keep, drop = add_candidate(db, "keep"), add_candidate(db, "drop")
    with db.transaction() as session:
        rejected = repo.reject_generation(session, generation_id=drop, reason="too short")
        assert (rejected.status, rejected.reject_reason) == ("rejected", "too short")
        assert [g.id for g in repo.candidate_generations(session)] == [keep]
        assert repo.candidate_generations(session, model_name="other") == []


def test_a_rejection_racing_a_claim_leaves_the_claim(fresh_db):
    """Another process's buffer may reject (outscore, re-check) a candidate while this one claims
    it: the rejection waits for the claim and leaves it, it never turns a claimed verse rejected."""
    generation = add_candidate(fresh_db, "racing")
    claimed, release = threading.Event(), threading.Event()

    def claim() -> None:
        with fresh_db.transaction() as session:
            repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=generation)
            claimed.set()
            release.wait(10)  # hold the claim uncommitted while the rejection runs

    def reject() -> str:
        with fresh_db.transaction() as session:
            return repo.reject_generation(session, generation_id=generation, reason="outscored").status

    with ThreadPoolExecutor(2) as pool:
        claiming = pool.submit(claim)
        assert claimed.wait(10)
        rejecting = pool.submit(reject)
        time.sleep(0.3)  # the rejection has read the row and waits for the claim's lock
        release.set()
        claiming.result(10)
        assert rejecting.result(10) == "claimed"
    with fresh_db.transaction() as session:
        assert repo.get_generation(session, generation_id=generation).status == "claimed"
