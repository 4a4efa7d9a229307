"""`rnnbot`: one command line with a subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys
import traceback

from bot.logs import protect_logs, redact
from models.errors import RnnbotError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from cli import bot_commands, db_commands, neuron_commands, scheduler_commands, train_commands

    parser = argparse.ArgumentParser(prog="rnnbot", description="Character-level RNN text generation bot.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_commands.register(sub)
    db_commands.register(sub)
    bot_commands.register(sub)
    neuron_commands.register(sub)
    scheduler_commands.register(sub)
    return parser


def configure_logging(verbose: bool) -> None:
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s", datefmt="%H:%M:%S")
    protect_logs()
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    # PTB 22: RetryAfter.retry_after as a timedelta (the future default) and no deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    configure_logging(args.verbose)
    try:
        return args.handler(args) or 0
    except RnnbotError as exc:
        print(f"rnnbot: error: {redact(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback helps, but it may quote the token
        print(redact(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
