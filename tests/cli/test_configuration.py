"""One configuration source: every command reads a setting from its flag, then the environment, then
.env in the working directory, then the default. Checked through the real CLI, in subprocesses that
run in a directory with its own .env, for a `db` command and for `train`."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from tests.helpers import PERIODIC, assert_clean_error, run_cli

# Settings this test sets itself: nothing inherited may decide for it.
OWN = ("DATABASE_URL", "RNNBOT_RUN_DIR", "RNNBOT_RETENTION_DAYS", "LOG_FORMAT")


def clean_env(**values: str) -> dict:
    """The real environment without the settings under test (run_cli adds it on top of os.environ)."""
    env = {k: v for k, v in os.environ.items() if k not in OWN}
    return {**env, **values}


def run_in(cwd: Path, *args: str, dot_env: str = "", **env: str):
    (cwd / ".env").write_text(dot_env, encoding="utf-8")
    # run_cli merges os.environ first: blank what we do not set, so only `env` and .env decide
    blanks = {name: "" for name in OWN if name not in env}
    return run_cli(*args, cwd=cwd, env={**blanks, **env})


def sqlite(tmp_path: Path, name: str) -> str:
    return f"sqlite:///{tmp_path / name}"


@pytest.mark.parametrize("source", ["dot_env", "env", "both", "flag"])
def test_db_command_reads_flag_then_env_then_dot_env(tmp_path, source):
    dot_env, env, flag = sqlite(tmp_path, "dot-env.db"), sqlite(tmp_path, "env.db"), sqlite(tmp_path, "flag.db")
    given = {"dot_env": dict(dot_env=f"DATABASE_URL={dot_env}\n"),
             "env": dict(DATABASE_URL=env),
             "both": dict(dot_env=f"DATABASE_URL={dot_env}\n", DATABASE_URL=env),
             "flag": dict(dot_env=f"DATABASE_URL={dot_env}\n", DATABASE_URL=env)}[source]
    args = ["db", "upgrade"] + (["--database-url", flag] if source == "flag" else [])
    proc = run_in(tmp_path, *args, **given)
    assert proc.returncode == 0, proc.stderr
    expected = {"dot_env": "dot-env.db", "env": "env.db", "both": "env.db", "flag": "flag.db"}[source]
    # it says which database it used, and that is the one it migrated
    assert proc.stdout.splitlines()[0] == f"database: {sqlite(tmp_path, expected)}"
    assert sorted(p.name for p in tmp_path.glob("*.db")) == [expected]


def test_db_commands_hide_the_password_and_read_retention_from_dot_env(tmp_path):
    url = "postgresql://rnnbot:s3cret-pw@127.0.0.1:9/rnnbot"  # nothing listens on port 9
    proc = run_in(tmp_path, "db", "current", dot_env=f"DATABASE_URL={url}\n")
    assert proc.stdout.splitlines()[0] == "database: postgresql+psycopg://rnnbot:***@127.0.0.1:9/rnnbot"
    assert_clean_error(proc, "database postgresql+psycopg://rnnbot:***@127.0.0.1:9/rnnbot")
    assert "s3cret-pw" not in proc.stdout + proc.stderr

    db = sqlite(tmp_path, "prune.db")
    assert run_in(tmp_path, "db", "upgrade", DATABASE_URL=db).returncode == 0
    proc = run_in(tmp_path, "db", "prune", dot_env="RNNBOT_RETENTION_DAYS=30\n", DATABASE_URL=db)
    assert proc.returncode == 0, proc.stderr
    assert "older than 30 days" in proc.stdout
    proc = run_in(tmp_path, "db", "prune", "--days", "7", dot_env="RNNBOT_RETENTION_DAYS=30\n", DATABASE_URL=db)
    assert "older than 7 days" in proc.stdout  # the flag wins
    assert_clean_error(run_in(tmp_path, "db", "prune", dot_env="RNNBOT_RETENTION_DAYS=soon\n", DATABASE_URL=db),
                       "RNNBOT_RETENTION_DAYS")


@pytest.mark.slow
@pytest.mark.parametrize("source", ["dot_env", "env", "both", "flag"])
def test_train_reads_flag_then_env_then_dot_env(tmp_path, source):
    work = tmp_path / "work"
    work.mkdir()
    corpus = work / "corpus.txt"
    corpus.write_text(PERIODIC * 20, encoding="utf-8")
    given = {"dot_env": dict(dot_env="RNNBOT_RUN_DIR=from-dot-env\nRNNBOT_HIDDEN=12\n"),
             "env": dict(RNNBOT_RUN_DIR="from-env", RNNBOT_HIDDEN="12"),
             "both": dict(dot_env="RNNBOT_RUN_DIR=from-dot-env\nRNNBOT_HIDDEN=12\n", RNNBOT_RUN_DIR="from-env"),
             "flag": dict(dot_env="RNNBOT_RUN_DIR=from-dot-env\nRNNBOT_HIDDEN=12\n", RNNBOT_RUN_DIR="from-env")}
    args = ["train", "--corpus", str(corpus), "--layers", "1", "--seq-len", "16", "--batch-size", "2",
            "--max-steps", "2", "--eval-every", "2", "--sample-chars", "5", "--embedding", "4"]
    if source == "flag":
        args += ["--run-dir", "from-flag", "--hidden", "10"]
    proc = run_in(work, *args, **given[source])
    assert proc.returncode == 0, proc.stderr
    expected = {"dot_env": "from-dot-env", "env": "from-env", "both": "from-env", "flag": "from-flag"}[source]
    assert sorted(p.name for p in work.iterdir() if p.is_dir()) == [expected]
    config = (work / expected / "config.json").read_text(encoding="utf-8")
    # .env's RNNBOT_HIDDEN applies unless the flag says otherwise
    assert f'"hidden": {10 if source == "flag" else 12}' in config
