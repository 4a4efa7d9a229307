"""`rnnbot`: one command line with a subcommand per job."""

from __future__ import annotations

import argparse
import difflib
import logging
import os
import sys
import traceback

from models.errors import RnnbotError

EXIT_FAILURE = 1
EXIT_USAGE = 2
EXIT_INTERRUPTED = 130


class Parser(argparse.ArgumentParser):
    """argparse, where a mistyped flag is reported by the subcommand it was given to (with that
    subcommand's usage, not rnnbot's) along with the closest flag it has."""

    def parse_known_args(self, args=None, namespace=None):
        self.given = list(sys.argv[1:] if args is None else args)  # what error() looks through
        return super().parse_known_args(args, namespace)

    def error(self, message: str):
        unknown = self.unknown_flag()
        if unknown:
            close = difflib.get_close_matches(unknown, self.flags(), n=1, cutoff=0.6)
            hint = f"did you mean {close[0]}?" if close else f"{self.prog} has no {unknown}"
            message += f" ({hint})" if unknown in message else f"; {unknown} is not a flag of {self.prog} ({hint})"
        super().error(message)

    def flags(self) -> list[str]:
        return [s for a in self._actions for s in a.option_strings if s.startswith("--")]

    def unknown_flag(self) -> str | None:
        """The first --flag given that this (sub)command does not have (or abbreviate)."""
        if any(isinstance(a, argparse._SubParsersAction) for a in self._actions):
            return None  # the subcommand's flags are not this parser's: it cannot tell
        for token in getattr(self, "given", []):
            if token == "--":
                break
            name = token.split("=", 1)[0]
            if name.startswith("--") and not any(f.startswith(name) for f in self.flags()):
                return name
        return None


def chosen_subcommand(parser: argparse.ArgumentParser, args: argparse.Namespace) -> argparse.ArgumentParser:
    """The innermost subcommand's parser that `args` came through (rnnbot neurons show -> its parser)."""
    while True:
        subs = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        if not subs or getattr(args, subs[0].dest, None) is None:
            return parser
        parser = subs[0].choices[getattr(args, subs[0].dest)]


def build_parser() -> argparse.ArgumentParser:
    from cli import bot_commands, db_commands, neuron_commands, scheduler_commands, train_commands

    parser = Parser(prog="rnnbot", description="Character-level RNN text generation bot.")
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


def redacted(text: str) -> str:
    """`text` without the token or other secrets the command registered (bot/logs.py); imported
    here, not at the top, so that db is not imported before configure_logging sets the level."""
    from bot.logs import redact

    return redact(text)


def main(argv: list[str] | None = None) -> int:
    # PTB 22: RetryAfter.retry_after as a timedelta (the future default) and no deprecation warning.
    os.environ.setdefault("PTB_TIMEDELTA", "1")
    parser = build_parser()
    args, unknown = parser.parse_known_args(argv)
    if unknown:  # a flag the subcommand does not have: its usage, not rnnbot's
        chosen_subcommand(parser, args).error(f"unrecognized arguments: {' '.join(unknown)}")
    try:
        configure_logging(args.verbose, args.log_format)
        return args.handler(args) or 0
    except RnnbotError as exc:
        print(f"rnnbot: error: {redacted(str(exc))}", file=sys.stderr)
        return EXIT_USAGE
    except KeyboardInterrupt:
        print("rnnbot: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except Exception:  # a bug: the traceback helps, but it may quote the token
        print(redacted(traceback.format_exc()), file=sys.stderr, end="")
        return EXIT_FAILURE


if __name__ == "__main__":
    sys.exit(main())
