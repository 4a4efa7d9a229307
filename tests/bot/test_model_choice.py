"""Which model the bot serves: MODEL_PATH, else a trained run in MODEL_RUN_DIR, else the bundled one."""

from __future__ import annotations

import shutil

import pytest

from bot.services import ModelNotFound, resolve_models
from bot.settings import Settings
from models.bundled import bundled_checkpoint


def settings(**values) -> Settings:
    return Settings(_env_file=None, **values)


def test_model_path_comes_first_then_the_run_directory_then_the_bundled_model(tmp_path, trained_run, sqlite_db):
    run_dir = tmp_path / "runs" / "kjv"
    explicit = tmp_path / "mine"
    shutil.copytree(trained_run, explicit)
    # nothing configured, nothing trained: the bundled model
    paths, default = resolve_models(settings(model_run_dir=str(run_dir)), sqlite_db)
    assert default == "kjv" and paths["kjv"] == str(bundled_checkpoint().parent)
    # a trained run in the run directory
    shutil.copytree(trained_run, run_dir)
    paths, default = resolve_models(settings(model_run_dir=str(run_dir)), sqlite_db)
    assert default == "kjv" and paths["kjv"] == str(run_dir)
    # an explicit MODEL_PATH beats both
    paths, default = resolve_models(settings(model_path=str(explicit), model_run_dir=str(run_dir)), sqlite_db)
    assert default == "mine" and paths == {"mine": str(explicit)}


def test_an_explicit_model_path_that_does_not_exist_is_not_replaced_by_the_bundled_model(tmp_path, sqlite_db):
    with pytest.raises(ModelNotFound, match="MODEL_PATH=.*does not exist"):
        resolve_models(settings(model_path=str(tmp_path / "nowhere")), sqlite_db)
