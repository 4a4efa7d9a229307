"""Users, their settings, the admin flag, chats, and /forget."""

from __future__ import annotations

from datetime import timedelta

import pytest

from db import repositories as repo
from db.base import utcnow
from db.errors import NotFoundError
from tests.db.helpers import SAMPLING, add_candidate, counts


def test_upsert_user_refreshes_username_and_last_seen_but_keeps_first_seen(db):
    first = utcnow() - timedelta(days=3)
    with db.transaction() as session:
        repo.upsert_user(session, user_id=1, username="ann", now=first)
    with db.transaction() as session:
        user = repo.upsert_user(session, user_id=1, username="ann_b")
    assert user.username == "ann_b"
    assert user.first_seen_at == first
    assert user.last_seen_at > first + timedelta(days=2)


def test_settings_default_to_none_and_can_be_reset(db):
    with db.transaction() as session:
        user = repo.upsert_user(session, user_id=1)
        assert (user.temperature, user.length, user.model_name) == (None, None, None)
        repo.update_user_settings(session, user_id=1, temperature=0.5, length=120, model_name="kjv")
    with db.transaction() as session:
        user = repo.update_user_settings(session, user_id=1, length=None)  # the others are kept
    assert (user.temperature, user.length, user.model_name) == (0.5, None, "kjv")


def test_settings_of_an_unknown_user_raise_not_found(db):
    with pytest.raises(NotFoundError, match="no user with id 404"), db.transaction() as session:
        repo.update_user_settings(session, user_id=404, temperature=1.0)


def test_admin_flag_follows_configuration_not_users(db):
    with db.transaction() as session:
        repo.upsert_user(session, user_id=1, is_admin=True)
        repo.upsert_user(session, user_id=2)
        with pytest.raises(TypeError):
            repo.update_user_settings(session, user_id=2, is_admin=True)
        repo.sync_admins(session, admin_ids=[2])
    with db.transaction() as session:
        assert [repo.get_user(session, user_id=i).is_admin for i in (1, 2)] == [False, True]
        assert repo.upsert_user(session, user_id=2, is_admin=False).is_admin is False


def test_upsert_chat_updates_title(db):
    with db.transaction() as session:
        repo.upsert_chat(session, chat_id=-10, type="group", title="old")
        chat = repo.upsert_chat(session, chat_id=-10, type="supergroup", title="new")
    assert (chat.type, chat.title) == ("supergroup", "new")


def populate_two_users(db) -> None:
    """Ann (1) and Bob (2): private chats, a shared group, prompts with completions, plus a post."""
    with db.transaction() as session:
        for user_id, name in ((1, "ann"), (2, "bob")):
            repo.upsert_user(session, user_id=user_id, username=name)
            repo.update_user_settings(session, user_id=user_id, temperature=0.3)
            repo.upsert_chat(session, chat_id=user_id, type="private")
        repo.upsert_chat(session, chat_id=-50, type="group", title="both")
        for user_id, chat_id in ((1, 1), (1, -50), (1, None), (2, 2), (2, -50)):
            prompt = repo.add_prompt(session, user_id=user_id, chat_id=chat_id, text=f"from {user_id}")
            for _ in range(3):
                repo.add_completion(session, prompt_id=prompt.id, text="...", model_name="kjv", params=SAMPLING,
                                    latency_ms=12)
    generation_id = add_candidate(db)
    with db.transaction() as session:
        repo.claim_post_slot(session, channel_id=-100, slot=utcnow(), generation_id=generation_id)


def test_forget_removes_every_row_of_that_user_and_nothing_else(db):
    populate_two_users(db)
    before = counts(db)
    with db.transaction() as session:
        deleted = repo.forget_user(session, user_id=1)
    assert deleted == {"completions": 9, "prompts": 3, "chats": 1, "users": 1}
    after = counts(db)
    assert {t: before[t] - after[t] for t in before if before[t] != after[t]} == deleted
    with db.transaction() as session:
        assert repo.get_user(session, user_id=1) is None
        assert repo.user_prompts(session, user_id=1) == []
        assert repo.get_chat(session, chat_id=1) is None
        assert repo.get_chat(session, chat_id=-50).title == "both"  # shared with Bob
        bob = repo.user_prompts(session, user_id=2)
        assert len(bob) == 2 and all(len(p.completions) == 3 for p in bob)
        assert repo.get_user(session, user_id=2).temperature == 0.3


def test_forget_an_unknown_user_deletes_nothing(db):
    populate_two_users(db)
    before = counts(db)
    with db.transaction() as session:
        assert repo.forget_user(session, user_id=999) == {"completions": 0, "prompts": 0, "chats": 0, "users": 0}
    assert counts(db) == before
