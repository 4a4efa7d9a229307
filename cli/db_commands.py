"""db upgrade, downgrade, current, stats, prune, revision: the database from the command line."""

from __future__ import annotations

import argparse

from cli.options import database_option, read_settings
from models.errors import RnnbotError

RETENTION_ENV = "RNNBOT_RETENTION_DAYS"


def register(sub) -> None:
    common = database_option()
    p = sub.add_parser("db", help="database: migrations, statistics, retention")
    db_sub = p.add_subparsers(dest="db_command", required=True, metavar="DB_COMMAND")

    q = db_sub.add_parser("upgrade", parents=[common],
                          help="apply migrations (before serve, scheduler or post start: they do not migrate)")
    q.add_argument("--revision", default="head", help="migrate up to this revision (default: head)")
    q.set_defaults(handler=cmd_upgrade)

    q = db_sub.add_parser("downgrade", parents=[common], help="revert migrations; `base` drops every table")
    q.add_argument("revision", help="target revision: an id, -1 for one step back, or base")
    q.add_argument("--yes", action="store_true", help="confirm: a downgrade deletes data")
    q.set_defaults(handler=cmd_downgrade)

    q = db_sub.add_parser("current", parents=[common], help="print the database's revision and the newest one")
    q.set_defaults(handler=cmd_current)

    q = db_sub.add_parser("stats", parents=[common], help="rows per table and the last posts")
    q.add_argument("--posts", type=int, default=5, help="how many recent posts to list (default: 5)")
    q.set_defaults(handler=cmd_stats)

    q = db_sub.add_parser("prune", parents=[common], help="delete prompts and completions older than N days")
    q.add_argument("--days", type=float, help=f"retention in days (default: {RETENTION_ENV} from the "
                                              "environment, then .env)")
    q.set_defaults(handler=cmd_prune)

    q = db_sub.add_parser("revision", parents=[common],
                          help="developers: write a migration for what changed in db/models.py")
    q.add_argument("-m", "--message", required=True, help="what the migration does")
    q.set_defaults(handler=cmd_revision)


def _settings(args: argparse.Namespace, **flags):
    from db.settings import DatabaseSettings

    return read_settings(DatabaseSettings, database_url=args.database_url, **flags)


def _open(args: argparse.Namespace, settings=None):
    """The database the flag, the environment or .env names; says which before touching it."""
    from db.session import Database, safe_url

    url = (settings or _settings(args)).database_url
    print(f"database: {safe_url(url)}", flush=True)
    return Database(url)


def _revision_line(engine) -> str:
    from db.migrate import current_revision, head_revision

    current, head = current_revision(engine), head_revision()
    if current == head:
        return f"revision: {current} (head)"
    return f"revision: {current or 'none'}; newest is {head}: run `rnnbot db upgrade`"


def cmd_upgrade(args: argparse.Namespace) -> int:
    from db.session import database_errors

    with _open(args) as db, database_errors(db.url):
        db.upgrade(args.revision)
        print(_revision_line(db.engine))
    return 0


def cmd_downgrade(args: argparse.Namespace) -> int:
    from db.migrate import downgrade
    from db.session import database_errors

    if not args.yes:
        raise RnnbotError("a downgrade drops tables and their data: add --yes to go ahead")
    with _open(args) as db, database_errors(db.url):
        downgrade(db.engine, args.revision)
        print(_revision_line(db.engine))
    return 0


def cmd_current(args: argparse.Namespace) -> int:
    from db.session import database_errors

    with _open(args) as db, database_errors(db.url):
        print(_revision_line(db.engine))
    return 0


def cmd_stats(args: argparse.Namespace) -> int:
    from db import repositories as repo
    from db.errors import DatabaseConfigError
    from db.migrate import current_revision
    from db.session import database_errors, safe_url

    with _open(args) as db, database_errors(db.url):
        if current_revision(db.engine) is None:
            raise DatabaseConfigError(f"{safe_url(db.url)} has no rnnbot tables yet: "
                                      "run `rnnbot db upgrade`")
        print(_revision_line(db.engine))
        with db.transaction() as session:
            counts = repo.table_counts(session)
            posts = repo.recent_posts(session, limit=args.posts)
        width = max(map(len, counts))
        print()
        for table, rows in counts.items():
            print(f"{table:<{width}}  {rows:>9,}")
        print()
        print(f"last {len(posts)} posts:" if posts else "no posts yet")
        for post in posts:
            message = f"message {post.message_id}" if post.message_id is not None else (post.error or "")
            if post.generation is not None:  # a missed slot has no verse
                text = post.generation.text.replace("\n", " ")
                message += f"  {text if len(text) <= 60 else text[:57] + '...'!r}"
            print(f"  {post.slot:%Y-%m-%d %H:%M} UTC  channel {post.channel_id}  {post.status:<7}  {message}")
    return 0


def cmd_prune(args: argparse.Namespace) -> int:
    from db import repositories as repo
    from db.session import database_errors

    if args.days is not None and not args.days > 0:
        raise RnnbotError(f"--days must be a positive number of days, got {args.days:g}")
    settings = _settings(args, retention_days=args.days)
    days = settings.retention_days
    if days is None:
        raise RnnbotError(f"say how old: --days N (or set {RETENTION_ENV})")
    with _open(args, settings) as db, database_errors(db.url), db.transaction() as session:
        deleted = repo.prune_older_than(session, days=days)
    print(f"deleted {deleted['prompts']:,} prompts and {deleted['completions']:,} completions "
          f"older than {days:g} days")
    return 0


def cmd_revision(args: argparse.Namespace) -> int:
    from db.migrate import new_revision, schema_diff
    from db.session import database_errors

    with _open(args) as db, database_errors(db.url):
        db.upgrade()  # autogenerate compares against an up-to-date schema
        if not schema_diff(db.engine):
            raise RnnbotError("db/models.py and the migrations already agree: nothing to write")
        path = new_revision(db.engine, args.message)
    print(f"wrote {path}: review it before committing")
    return 0
