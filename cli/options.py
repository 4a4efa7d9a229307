"""Build argparse flags from a config dataclass, so each option is declared once (in the dataclass)."""

from __future__ import annotations

import argparse
import os
import types
import typing
from dataclasses import MISSING, fields

from models.errors import RnnbotError


def _base_type(hint):
    """int | None -> int; bool stays bool."""
    if isinstance(hint, types.UnionType) or typing.get_origin(hint) is typing.Union:
        args = [a for a in typing.get_args(hint) if a is not type(None)]
        return args[0]
    return hint


def flag(name: str) -> str:
    return "--" + name.replace("_", "-")


def add_config_args(parser: argparse.ArgumentParser, cls, env_prefix: str, group_title: str | None = None) -> None:
    """One flag per field; defaults are suppressed so `given_options` can tell what was typed."""
    hints = typing.get_type_hints(cls)
    target = parser.add_argument_group(group_title) if group_title else parser
    for f in fields(cls):
        kind = _base_type(hints[f.name])
        default = None if f.default is MISSING else f.default
        help_text = f"{f.metadata.get('help', '')} (default: {default}; env {env_prefix}{f.name.upper()})"
        names = [flag(f.name), *f.metadata.get("aliases", ())]
        if kind is bool:
            target.add_argument(*names, dest=f.name, action=argparse.BooleanOptionalAction, default=argparse.SUPPRESS,
                                help=help_text)
        else:
            target.add_argument(*names, dest=f.name, type=kind, default=argparse.SUPPRESS, metavar=f.name.upper(),
                                choices=f.metadata.get("choices"), help=help_text)


def given_options(args: argparse.Namespace, cls) -> dict:
    return {f.name: getattr(args, f.name) for f in fields(cls) if hasattr(args, f.name)}


def env_options(cls, env_prefix: str) -> dict:
    """Values from RNNBOT_* environment variables, converted to each field's type."""
    hints = typing.get_type_hints(cls)
    values = {}
    for f in fields(cls):
        raw = os.environ.get(env_prefix + f.name.upper())
        if raw is None or raw == "":
            continue
        kind = _base_type(hints[f.name])
        try:
            if kind is bool:
                if raw.lower() not in ("1", "0", "true", "false", "yes", "no"):
                    raise ValueError(raw)
                values[f.name] = raw.lower() in ("1", "true", "yes")
            else:
                values[f.name] = kind(raw)
        except ValueError:
            raise RnnbotError(f"{env_prefix}{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
    return values


def build_config(cls, args: argparse.Namespace, env_prefix: str):
    """Defaults < environment < flags."""
    return cls(**{**env_options(cls, env_prefix), **given_options(args, cls)})
