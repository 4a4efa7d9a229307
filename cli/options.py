"""Command-line options: argparse flags built from a config dataclass, so each option is declared once
(in the dataclass), and settings read in the one order every command uses: flag, environment, .env,
default."""

from __future__ import annotations

import argparse
import functools
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


@functools.cache
def settings_class(cls, env_prefix: str) -> type:
    """A pydantic-settings class with one optional field per dataclass field, read from
    `env_prefix` + NAME in the environment and then in .env (the dataclass keeps the defaults)."""
    from pydantic import create_model
    from pydantic_settings import BaseSettings

    from db.settings import SOURCES

    base = type(f"{cls.__name__}Sources", (BaseSettings,), {"model_config": {**SOURCES, "env_prefix": env_prefix}})
    hints = typing.get_type_hints(cls)
    return create_model(f"{cls.__name__}Settings", __base__=base,
                        **{f.name: (_base_type(hints[f.name]) | None, None) for f in fields(cls)})


def env_options(cls, env_prefix: str) -> dict:
    """Values from RNNBOT_* in the environment, then in .env, converted to each field's type."""
    from pydantic import ValidationError

    try:
        values = settings_class(cls, env_prefix)()
    except ValidationError as exc:
        error = exc.errors()[0]
        name = env_prefix + str(error["loc"][0]).upper()
        kind = _base_type(typing.get_type_hints(cls)[str(error["loc"][0])])
        raise RnnbotError(f"{name}={error['input']!r} is not a valid {kind.__name__}") from None
    return {name: getattr(values, name) for name in values.model_fields_set}


def build_config(cls, args: argparse.Namespace, env_prefix: str):
    """Flags, then the environment, then .env, then the dataclass's defaults."""
    return cls(**{**env_options(cls, env_prefix), **given_options(args, cls)})


def database_option() -> argparse.ArgumentParser:
    """--database-url, for every command that touches the database (argparse `parents=`)."""
    parent = argparse.ArgumentParser(add_help=False)
    parent.add_argument("--database-url", metavar="URL",
                        help="database to use (default: DATABASE_URL from the environment, then .env, "
                             "else sqlite:///data/rnnbot.db)")
    return parent


def read_settings(cls, **flags):
    """A pydantic-settings class filled from the flags that were given (None = not given), then the
    environment, then .env, then its defaults; a bad value is one clear RnnbotError."""
    from pydantic import ValidationError

    try:
        return cls(**{name: value for name, value in flags.items() if value is not None})
    except ValidationError as exc:
        problems = "; ".join((f"{'.'.join(map(str, e['loc'])).upper()}: " if e["loc"] else "")
                             + e["msg"].removeprefix("Value error, ") for e in exc.errors())
        raise RnnbotError(f"bad configuration: {problems}") from None
