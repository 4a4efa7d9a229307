"""The model registry: at most one active checkpoint per name, enforced by the database too."""

from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from db import repositories as repo
from db.models import RegisteredModel


def register(session, name: str, path: str, **kwargs):
    return repo.register_model(session, name=name, path=path, config={"hidden": 32}, corpus="kjv", **kwargs)


def test_activating_a_model_deactivates_the_others_of_its_name(db):
    with db.transaction() as session:
        a = register(session, "kjv", "/runs/kjv/a.safetensors", activate=True)
        b = register(session, "kjv", "/runs/kjv/b.safetensors", val_bpc=1.9)
        other = register(session, "python", "/runs/py/best.safetensors", activate=True)
        assert repo.active_model(session, name="kjv").id == a.id
        repo.activate_model(session, model_id=b.id)
    with db.transaction() as session:
        assert repo.active_model(session, name="kjv").id == b.id
        assert [m.active for m in repo.list_models(session, name="kjv")] == [True, False]  # newest first
        assert repo.active_model(session, name="python").id == other.id
        assert repo.active_model(session, name="missing") is None


def test_active_model_without_a_name_is_the_newest_active(db):
    with db.transaction() as session:
        register(session, "kjv", "/a", activate=True)
        newest = register(session, "python", "/b", activate=True)
        register(session, "shakespeare", "/c")  # newer, but inactive
        assert repo.active_model(session).id == newest.id


def test_the_database_refuses_two_active_models_of_one_name(db):
    with db.transaction() as session:
        register(session, "kjv", "/a", activate=True)
    with pytest.raises(IntegrityError), db.transaction() as session:
        session.add(RegisteredModel(name="kjv", path="/b", config={}, active=True))
        session.flush()
    with db.transaction() as session:  # inactive rows of the same name are fine
        session.add(RegisteredModel(name="kjv", path="/c", config={}, active=False))
        session.add(RegisteredModel(name="kjv", path="/d", config={}, active=False))
        session.flush()
        assert len(repo.list_models(session, name="kjv")) == 3


def test_registering_the_same_checkpoint_again_updates_it(db):
    with db.transaction() as session:
        first = register(session, "kjv", "/runs/kjv/best.safetensors", val_bpc=2.5)
        again = register(session, "kjv", "/runs/kjv/best.safetensors", val_bpc=2.1, activate=True)
        assert again.id == first.id and (again.val_bpc, again.active) == (2.1, True)
        assert len(repo.list_models(session, name="kjv")) == 1
        assert repo.deactivate_model(session, model_id=first.id).active is False
        assert repo.active_model(session, name="kjv") is None
