"""An async client for the sandbox's control API, for tests and benchmarks.

    async with SandboxClient(server.url) as alice:
        sent = await alice.send_text(None, "/start")      # None: the client's own user
        reply = await alice.wait_for_bot_reply(sent["chat"]["id"], after=sent)
        await alice.press_button(reply, text="Settings")
        await alice.send_text({"id": 2002, "first_name": "Bob"}, "hi all", chat="group")
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable

import aiohttp

from sandbox.state import DEFAULT_USER

Predicate = Callable[[dict], bool]
# A user id, {"id", "first_name", "username"}, an object with those attributes (telegram.User),
# or None for the client's own user.
UserRef = int | dict | object | None


class SandboxError(RuntimeError):
    """The control API refused a request (its "error" text is the message)."""


class SandboxClient:
    def __init__(self, base_url: str, user_id: int = DEFAULT_USER["id"], first_name: str = DEFAULT_USER["first_name"],
                 username: str | None = DEFAULT_USER["username"], poll_interval: float = 0.05):
        self.base_url = base_url.rstrip("/")
        self.user = {"id": user_id, "first_name": first_name, "username": username}
        self.poll_interval = poll_interval
        self._session: aiohttp.ClientSession | None = None

    async def __aenter__(self) -> SandboxClient:
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.close()

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
            self._session = None

    async def _request(self, method: str, path: str, json: dict | None = None,
                       params: dict | None = None) -> object:
        if self._session is None:
            self._session = aiohttp.ClientSession()
        params = {k: str(v) for k, v in (params or {}).items() if v is not None}
        if json is None and method != "GET":
            json = {}  # the control API takes changes as JSON only (see sandbox/guard.py)
        async with self._session.request(method, f"{self.base_url}/sandbox/api/{path}", json=json,
                                         params=params) as response:
            data = await response.json()
        if not data.get("ok"):
            raise SandboxError(data.get("error", f"HTTP {response.status}"))
        return data["result"]

    def _user(self, user: UserRef) -> dict:
        if user is None:
            user = self.user
        elif isinstance(user, int):
            user = {"id": user}
        elif not isinstance(user, dict):
            user = {key: getattr(user, key, None) for key in ("id", "first_name", "username")}
        return {"user_id": user["id"], "first_name": user.get("first_name"),
                "username": user.get("username")}

    # --- acting as a user ----------------------------------------------------------------------

    async def send_text(self, user: UserRef, text: str, chat: int | str | None = None,
                        reply_to: int | None = None) -> dict:
        """Write `text` in the user's private chat (default) or `chat` ("group" or its id)."""
        return await self._request("POST", "send", {**self._user(user), "text": text,
                                                    "chat_id": chat, "reply_to_message_id": reply_to})

    async def edit_text(self, message: dict, text: str, user: UserRef = None) -> dict:
        """Edit one of the user's own messages (the bot gets an edited_message update)."""
        return await self._request("POST", "edit", {**self._user(user), "chat_id": message["chat"]["id"],
                                                    "message_id": message["message_id"], "text": text})

    async def press_button(self, message: dict, data: str | None = None, text: str | None = None,
                           user: UserRef = None, forge: bool = False) -> dict:
        """Press the inline button with callback `data` (or label `text`) under `message`; with
        `forge`, send `data` although no button carries it (as a modified client can).

        Returns {"button", "callback_query_id"}; no query id for URL/switch-inline buttons.
        """
        return await self._request("POST", "press", {
            **self._user(user), "chat_id": message["chat"]["id"],
            "message_id": message["message_id"], "data": data, "text": text, "forge": forge})

    async def raw_update(self, kind: str, payload: dict) -> dict:
        """Deliver an update exactly as given (e.g. a message without `from`); returns the update."""
        return await self._request("POST", "raw_update", {"kind": kind, "payload": payload})

    async def inline_query(self, user: UserRef, query: str, offset: str = "",
                           chat: int | str | None = None) -> str:
        """Type `@bot query`; returns the inline_query_id."""
        result = await self._request("POST", "inline_query", {**self._user(user), "query": query,
                                                              "offset": offset, "chat_id": chat})
        return result["inline_query_id"]

    async def choose_inline_result(self, user: UserRef, inline_query_id: str, result_id: str,
                                   chat: int | str | None = None) -> dict:
        return await self._request("POST", "inline_result", {
            **self._user(user), "inline_query_id": inline_query_id, "result_id": result_id,
            "chat_id": chat})

    async def set_user(self, user_id: int, first_name: str | None = None,
                       username: str | None = None, blocked: bool | None = None) -> dict:
        data = {"id": user_id, "first_name": first_name, "username": username}
        if blocked is not None:
            data["blocked"] = blocked
        return await self._request("POST", "users", data)

    # --- reading ---------------------------------------------------------------------------------

    async def messages(self, chat_id: int | str) -> list[dict]:
        return await self._request("GET", f"chats/{chat_id}/messages")

    async def events(self, chat_id: int | str, since: int = 0) -> list[dict]:
        return await self._request("GET", f"chats/{chat_id}/events", params={"since": since})

    async def chat_actions(self, chat_id: int | str) -> list[dict]:
        return await self._request("GET", f"chats/{chat_id}/actions")

    async def channel_posts(self, channel: int | str) -> list[dict]:
        return await self._request("GET", f"channels/{channel}/posts")

    async def inline_answers(self, inline_query_id: str | None = None,
                             user_id: int | None = None) -> list[dict]:
        """Inline queries (answered or not) with the bot's `answer` {"results", ...}."""
        return await self._request("GET", "inline_answers", params={
            "inline_query_id": inline_query_id, "user_id": user_id})

    async def callback_answers(self, callback_query_id: str | None = None,
                               chat_id: int | None = None) -> list[dict]:
        """Answered callback queries, each with the bot's `answer` {"text", "show_alert", ...}."""
        found = await self._request("GET", "callback_answers", params={
            "callback_query_id": callback_query_id, "chat_id": chat_id})
        return [q for q in found if q["answered"]]

    async def calls(self, method: str | None = None) -> list[dict]:
        """The Bot API calls the bot made (method, chat_id, ok, error_code, description)."""
        return await self._request("GET", "calls", params={"method": method})

    async def updates(self) -> dict:
        return await self._request("GET", "updates")

    async def state(self) -> dict:
        return await self._request("GET", "state")

    async def view(self, chat: str = "private") -> dict:
        """What the chat page shows this client's user: messages, their command menu, ..."""
        return await self._request("GET", "view", params={"user_id": self.user["id"], "chat": chat})

    # --- waiting ---------------------------------------------------------------------------------

    async def _wait(self, fetch: Callable, accept: Callable, timeout: float, what: str):
        deadline = time.monotonic() + timeout
        while True:
            found = accept(await fetch())
            if found:
                return found
            if time.monotonic() > deadline:
                raise TimeoutError(f"timed out after {timeout} s waiting for {what}")
            await asyncio.sleep(self.poll_interval)

    async def wait_for_messages(self, chat_id: int | str, predicate: Predicate = lambda m: True,
                                timeout: float = 10.0, count: int = 1) -> list[dict]:
        """Wait until `count` messages in the chat satisfy `predicate`; returns them all."""
        def enough(messages: list[dict]) -> list[dict] | None:
            hits = [m for m in messages if predicate(m)]
            return hits if len(hits) >= count else None

        return await self._wait(lambda: self.messages(chat_id), enough, timeout,
                                f"{count} matching message(s) in chat {chat_id}")

    async def wait_for_bot_reply(self, chat_id: int | str, after: dict | int | None = None,
                                 predicate: Predicate = lambda m: True,
                                 timeout: float = 10.0) -> dict:
        """The first bot message in the chat newer than `after` (a message or message_id)."""
        after_id = after["message_id"] if isinstance(after, dict) else (after or 0)
        found = await self.wait_for_messages(
            chat_id, lambda m: is_from_bot(m) and m["message_id"] > after_id and predicate(m),
            timeout)
        return found[0]

    async def ask(self, user: UserRef, text: str, chat: int | str | None = None,
                  timeout: float = 10.0) -> dict:
        """Send `text` and return the bot's first reply."""
        sent = await self.send_text(user, text, chat)
        return await self.wait_for_bot_reply(sent["chat"]["id"], after=sent, timeout=timeout)

    async def wait_for_edit(self, message: dict, predicate: Predicate = lambda m: True,
                            timeout: float = 10.0) -> dict:
        """The message once edited after the given version of it (and matching `predicate`).

        edit_date has whole seconds, so a second edit within the same second is recognised by its
        content (text, caption, entities or keyboard) differing from the given version.
        """
        before = message.get("edit_date", 0)

        def content(m: dict) -> tuple:
            return tuple(m.get(key) for key in ("text", "caption", "entities", "caption_entities",
                                                "reply_markup"))

        found = await self.wait_for_messages(
            message["chat"]["id"], lambda m: m["message_id"] == message["message_id"]
            and "edit_date" in m
            and (not before or m["edit_date"] > before or content(m) != content(message))
            and predicate(m),
            timeout)
        return found[0]

    async def wait_for_callback_answer(self, callback_query_id: str, timeout: float = 10.0) -> dict:
        found = await self._wait(lambda: self.callback_answers(callback_query_id), lambda qs: qs,
                                 timeout, f"an answer to callback query {callback_query_id}")
        return found[0]

    async def wait_for_inline_answer(self, inline_query_id: str, timeout: float = 10.0) -> dict:
        found = await self._wait(lambda: self.inline_answers(inline_query_id),
                                 lambda qs: [q for q in qs if q["answered"]], timeout,
                                 f"an answer to inline query {inline_query_id}")
        return found[0]["answer"]

    async def wait_for_channel_post(self, channel: int | str, predicate: Predicate = lambda m: True,
                                    timeout: float = 10.0) -> dict:
        found = await self._wait(lambda: self.channel_posts(channel),
                                 lambda ms: [m for m in ms if predicate(m)], timeout,
                                 f"a post in channel {channel}")
        return found[0]

    # --- world and faults ------------------------------------------------------------------------

    async def inject_fault(self, method: str, code: int, description: str = "", count: int | None = 1,
                           retry_after: int | None = None, chat_id: int | str | None = None) -> dict:
        """The next `count` calls of `method` ("*": any) answer HTTP `code` with `description`."""
        return await self._request("POST", "faults", {
            "method": method, "code": code, "description": description, "count": count,
            "retry_after": retry_after, "chat_id": chat_id})

    async def clear_faults(self) -> None:
        await self._request("DELETE", "faults")

    async def faults(self) -> dict:
        return await self._request("GET", "faults")

    async def set_latency(self, seconds: float, method: str = "*", after: bool = False) -> None:
        """Delay calls of `method` ("*": any) by `seconds` (0 removes the delay): before they take
        effect, or with `after` once they took effect (a client that times out cannot tell)."""
        await self._request("POST", "latency", {"seconds": seconds, "method": method, "after": after})

    async def add_channel(self, username: str | None = None, id: int | None = None,
                          title: str | None = None, bot_is_admin: bool = True) -> dict:
        data = {"username": username, "id": id, "title": title, "bot_is_admin": bot_is_admin}
        return await self._request("POST", "channels", {k: v for k, v in data.items() if v is not None})

    async def reset(self) -> None:
        await self._request("POST", "reset")


def is_from_bot(message: dict) -> bool:
    return bool(message.get("from", {}).get("is_bot"))
