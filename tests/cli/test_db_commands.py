"""`rnnbot db ...` through the real entry point, in a subprocess."""

from __future__ import annotations

import re
from datetime import timedelta

from db import repositories as repo
from db.base import utcnow
from db.migrate import head_revision
from db.session import Database
from tests.db.helpers import CHANNEL, SAMPLING, SLOT
from tests.helpers import assert_clean_error, run_cli


def populate(url: str) -> None:
    with Database(url) as db, db.transaction() as session:
        repo.upsert_user(session, user_id=1, username="ann")
        prompt = repo.add_prompt(session, user_id=1, text="old prompt")
        repo.add_completion(session, prompt_id=prompt.id, text="old completion", model_name="kjv", params=SAMPLING)
        prompt.created_at = utcnow() - timedelta(days=40)
        generation = repo.add_generation(session, text="And it came to pass", model_name="kjv", params=SAMPLING)
        post = repo.claim_post_slot(session, channel_id=CHANNEL, slot=SLOT, generation_id=generation.id)
        repo.mark_post_sent(session, post_id=post.id, message_id=77)
        repo.record_unposted_slot(session, channel_id=CHANNEL, slot=SLOT + timedelta(hours=1),
                                  error="missed: 1 slot from 10:00 to 10:00")


def test_upgrade_stats_and_prune(database_url):
    proc = run_cli("db", "upgrade", "--database-url", database_url)
    assert proc.returncode == 0, proc.stderr
    assert f"revision: {head_revision()} (head)" in proc.stdout

    populate(database_url)
    proc = run_cli("db", "stats", env={"DATABASE_URL": database_url})
    assert proc.returncode == 0, proc.stderr
    assert re.search(r"^posts\s+2$", proc.stdout, re.M) and re.search(r"^prompts\s+1$", proc.stdout, re.M)
    assert re.search(r"2030-01-01 09:00 UTC\s+channel -1001234567890\s+sent\s+message 77\s+'And it came to pass'",
                     proc.stdout)
    assert re.search(r"2030-01-01 10:00 UTC\s+channel -1001234567890\s+failed\s+missed: 1 slot from 10:00 to 10:00$",
                     proc.stdout, re.M)  # no verse beside a slot that posted nothing

    proc = run_cli("db", "prune", "--days", "30", "--database-url", database_url)
    assert proc.returncode == 0, proc.stderr
    assert "deleted 1 prompts and 1 completions older than 30 days" in proc.stdout


def test_default_database_is_created_in_data_folder(tmp_path):
    proc = run_cli("db", "upgrade", cwd=tmp_path, env={"DATABASE_URL": ""})
    assert proc.returncode == 0, proc.stderr
    assert "database: sqlite:///data/rnnbot.db" in proc.stdout
    assert (tmp_path / "data" / "rnnbot.db").is_file()


def test_errors_are_one_clear_line(tmp_path):
    assert_clean_error(run_cli("db", "stats", "--database-url", "mysql://u@h/d"), "unsupported database 'mysql'")
    assert_clean_error(run_cli("db", "stats", "--database-url", f"sqlite:///{tmp_path / 'new.db'}"),
                       "no rnnbot tables yet", "rnnbot db upgrade")
