"""setMyDescription, setMyShortDescription and their getters: what a user sees about the bot
before starting it (the description) and on its profile and in shares (the short description)."""

from __future__ import annotations

from sandbox.context import Call, api_method
from sandbox.params import bad_request

MAX_DESCRIPTION = 512  # Telegram's limits, in characters
MAX_SHORT_DESCRIPTION = 120


def _set(call: Call, store: dict[str, str], name: str, limit: int) -> bool:
    text = call.params.str(name, "")
    if len(text) > limit:
        raise bad_request(f"{name.upper()}_INVALID")
    language = call.params.str("language_code") or ""
    if text:
        store[language] = text
    else:
        store.pop(language, None)  # an empty text removes it, as in Telegram
    call.state.changed()
    return True


def _get(call: Call, store: dict[str, str]) -> str:
    language = call.params.str("language_code") or ""
    return store.get(language, store.get("", ""))


@api_method("setMyDescription")
async def set_my_description(call: Call) -> bool:
    return _set(call, call.state.descriptions, "description", MAX_DESCRIPTION)


@api_method("getMyDescription")
async def get_my_description(call: Call) -> dict:
    return {"description": _get(call, call.state.descriptions)}


@api_method("setMyShortDescription")
async def set_my_short_description(call: Call) -> bool:
    return _set(call, call.state.short_descriptions, "short_description", MAX_SHORT_DESCRIPTION)


@api_method("getMyShortDescription")
async def get_my_short_description(call: Call) -> dict:
    return {"short_description": _get(call, call.state.short_descriptions)}
