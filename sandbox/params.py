"""Bot API request parameters and errors.

PTB sends form data (multipart when a file is attached): string values raw, every other value
JSON-encoded. Other clients send JSON bodies or query strings, so each getter accepts both a typed
value and its string form.
"""

from __future__ import annotations

import json
from dataclasses import dataclass

from aiohttp import web


class ApiError(Exception):
    """An error answered the Telegram way: {"ok": false, "error_code", "description"}."""

    def __init__(self, code: int, description: str, retry_after: int | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.retry_after = retry_after

    def to_response(self) -> web.Response:
        body = {"ok": False, "error_code": self.code, "description": self.description}
        if self.retry_after is not None:
            body["parameters"] = {"retry_after": self.retry_after}
        return web.json_response(body, status=self.code)


def bad_request(message: str) -> ApiError:
    return ApiError(400, f"Bad Request: {message}")


def forbidden(message: str) -> ApiError:
    return ApiError(403, f"Forbidden: {message}")


@dataclass
class Upload:
    data: bytes
    filename: str | None
    content_type: str | None


class Params:
    def __init__(self, values: dict[str, object], uploads: dict[str, Upload] | None = None):
        self.values = values
        self.uploads = uploads or {}

    @classmethod
    async def from_request(cls, request: web.Request) -> Params:
        values: dict[str, object] = dict(request.query)
        uploads: dict[str, Upload] = {}
        if request.method == "POST" and request.can_read_body:
            if request.content_type == "application/json":
                try:
                    body = await request.json()
                except ValueError:
                    raise bad_request("can't parse JSON request body") from None
                if isinstance(body, dict):
                    values.update(body)
            else:
                form = await request.post()
                for name, value in form.items():
                    if isinstance(value, web.FileField):
                        uploads[name] = Upload(value.file.read(), value.filename,
                                               value.content_type)
                    else:
                        values[name] = value
        return cls(values, uploads)

    def has(self, name: str) -> bool:
        return self.values.get(name) not in (None, "") or name in self.uploads

    def str(self, name: str, default: str | None = None) -> str | None:
        value = self.values.get(name)
        return default if value is None else str(value)

    def int(self, name: str, default: int | None = None) -> int | None:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return int(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def float(self, name: str, default: float | None = None) -> float | None:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        try:
            return float(value)
        except (TypeError, ValueError):
            raise bad_request(f"invalid {name} specified") from None

    def bool(self, name: str, default: bool = False) -> bool:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        if isinstance(value, bool):
            return value
        return str(value).lower() in ("true", "1")

    def json(self, name: str, default: object = None, what: str | None = None) -> object:
        value = self.values.get(name)
        if value in (None, ""):
            return default
        if not isinstance(value, str):
            return value
        try:
            return json.loads(value)
        except ValueError:
            raise bad_request(f"can't parse {what or name} JSON object") from None

    def chat_id(self, name: str = "chat_id") -> int | str:
        """A numeric id or "@username"; Telegram refuses a missing one with "chat_id is empty"."""
        value = self.values.get(name)
        if value in (None, ""):
            raise bad_request(f"{name} is empty")
        if isinstance(value, int):
            return value
        try:
            return int(str(value))
        except ValueError:
            return str(value)

    def input_file(self, name: str) -> Upload | str | None:
        """An uploaded file (directly or via attach://NAME), else the string (a file_id or URL)."""
        if name in self.uploads:
            return self.uploads[name]
        value = self.str(name)
        if value and value.startswith("attach://"):
            upload = self.uploads.get(value[len("attach://"):])
            if upload is None:
                raise bad_request(f"file for {name} is not attached")  # sandbox wording
            return upload
        return value
