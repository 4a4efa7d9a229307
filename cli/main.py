"""`rnnbot`: one command line with a subcommand per job."""

from __future__ import annotations

import argparse
import logging
import os
import sys

from models.errors import RnnbotError

EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


def build_parser() -> argparse.ArgumentParser:
    from cli import bot_commands, db_commands, neuron_commands, scheduler_commands, train_commands

    parser = argparse.ArgumentParser(prog="rnnbot", description="Character-level RNN text generation bot.")
    parser.add_argument("-v", "--verbose", action="store_true", help="debug logging")
    parser.add_argument("--log-format", choices=("text", "json"),
                        help="json: one JSON object per line (default: LOG_FORMAT from the environment, then .env, "
                             "else text)")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    train_commands.register(sub)
    db_commands.register(sub)
    bot_commands.register(sub)
    neuron_commands.register(sub)
    scheduler_commands.register(sub)
    return parser


def configure_logging(verbose: bool, log_format: str | None = None) -> None:
    """The level from -v; --log-format, else LOG_FORMAT (environment, .env) picks text or JSON lines."""
    logging.basicConfig(level=logging.DEBUG if verbose else logging.INFO)
    # Imported once the level is set: importing db looks at it (db/__init__.py).
    from bot.logs import LogSettings, formatter, protect_logs
    from cli.options import read_settings

    chosen = formatter(read_settings(LogSettings, log_format=log_format).log_format)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(chosen)
    logging.captureWarnings(True)  # warnings become log lines too, in the chosen format
    protect_logs()
    logging.getLogger("matplotlib").setLevel(logging.WARNING)


def main(argv: list[str] | None = None) -> int:
    # PTB 22: RetryAfter.retry_after as a timedelta (the future default) and no deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        configure_logging(args.verbose, args.log_format)
        return args.handler(args) or 0
    except RnnbotError as exc:
        print(f"rnnbot: error: {exc}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED


if __name__ == "__main__":
    sys.exit(main())
