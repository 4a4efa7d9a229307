"""Text checks at the storage boundary.

Cleaned, not refused: NUL characters are removed (PostgreSQL text cannot hold them) and lone
surrogates (e.g. "\\ud800", which a JSON escape can smuggle in but UTF-8 cannot encode) become
U+FFFD, so one broken character never costs a user their whole message.
Refused: non-text values, and prompts longer than the configured maximum (PromptTooLongError).
Lengths are counted in code points, so an emoji counts as one character.
"""

from __future__ import annotations

import math
import re

from db.errors import InvalidInputError, PromptTooLongError

DEFAULT_MAX_PROMPT_CHARS = 4096
REPLACEMENT = "\ufffd"
SURROGATE = re.compile("[\ud800-\udfff]")


def clean_text(value: str, *, field: str, max_chars: int | None = None) -> str:
    if not isinstance(value, str):
        raise InvalidInputError(f"{field} must be text, got {type(value).__name__}")
    cleaned = SURROGATE.sub(REPLACEMENT, value.replace("\x00", ""))
    if max_chars is not None and len(cleaned) > max_chars:
        raise InvalidInputError(f"{field} is {len(cleaned)} characters long; at most {max_chars} are allowed")
    return cleaned


def clean_optional(value: str | None, *, field: str, max_chars: int | None = None) -> str | None:
    return None if value is None else clean_text(value, field=field, max_chars=max_chars)


def clean_prompt(text: str, *, max_chars: int = DEFAULT_MAX_PROMPT_CHARS) -> str:
    """A user's prompt, cleaned; call it before generating to refuse long prompts early."""
    cleaned = clean_text(text, field="prompt")
    if len(cleaned) > max_chars:
        raise PromptTooLongError(f"prompt is {len(cleaned)} characters long; the maximum is {max_chars}")
    return cleaned


def check_number(value, *, field: str, minimum: float, integer: bool = False, maximum: float | None = None):
    """A finite number (an int when `integer`) within [minimum, maximum]."""
    kinds = (int,) if integer else (int, float)
    if isinstance(value, bool) or not isinstance(value, kinds) or not math.isfinite(value):
        raise InvalidInputError(f"{field} must be a finite {'integer' if integer else 'number'}, got {value!r}")
    if value < minimum or (maximum is not None and value > maximum):
        bounds = f">= {minimum:g}" if maximum is None else f"in [{minimum:g}, {maximum:g}]"
        raise InvalidInputError(f"{field} must be {bounds}, got {value!r}")
    return value


def check_choice(value: str, *, field: str, choices: tuple[str, ...]) -> str:
    if value not in choices:
        raise InvalidInputError(f"{field} must be one of {', '.join(choices)}; got {value!r}")
    return value


def check_id(value, *, field: str) -> int:
    """A Telegram id or row id: an integer that fits in 64 bits."""
    if isinstance(value, bool) or not isinstance(value, int) or not -(2**63) <= value < 2**63:
        raise InvalidInputError(f"{field} must be a 64-bit integer, got {value!r}")
    return value
