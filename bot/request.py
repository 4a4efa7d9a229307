"""Bot API requests that survive text UTF-8 cannot carry.

JSON can carry a lone surrogate ("\\ud800"), so a user's message may hold one; echoing it back
(a prompt in bold, a name in a refusal) then failed to encode and the user got "Sorry". Every
string leaving the bot, and every string of an update arriving by long polling, has its lone
surrogates replaced by U+FFFD and its NULs removed, the way the database stores them
(db/cleaning.py).
"""

from __future__ import annotations

import json

from telegram.error import TelegramError
from telegram.request import HTTPXRequest, RequestData
from telegram.request._requestparameter import RequestParameter

from db.cleaning import REPLACEMENT, SURROGATE


def clean(value):
    """`value` (JSON-like) with lone surrogates in every string replaced and NULs removed."""
    if isinstance(value, str):
        return SURROGATE.sub(REPLACEMENT, value.replace("\x00", ""))
    if isinstance(value, list):
        return [clean(v) for v in value]
    if isinstance(value, dict):
        return {clean(k): clean(v) for k, v in value.items()}
    return value


class CleanTextRequest(HTTPXRequest):
    async def do_request(self, url: str, method: str, request_data: RequestData | None = None, **timeouts):
        if request_data is not None:
            request_data = RequestData([RequestParameter(p.name, clean(p.value), p.input_files)
                                        for p in request_data._parameters])
        return await super().do_request(url, method, request_data, **timeouts)

    @staticmethod
    def parse_json_payload(payload: bytes):
        try:
            return clean(json.loads(payload.decode("utf-8", "replace")))
        except ValueError as exc:  # not logged: the payload may hold users' messages
            raise TelegramError("Invalid server response") from exc
