"""The sandbox's in-memory Telegram: users, chats, messages, updates and what the bot answered
(sandbox/persist.py can keep the users, chats and messages in a file across restarts).

Messages are stored as Bot API JSON dicts, so answering the bot is a copy, not a conversion.
Everything runs on one event loop; nothing here needs a lock.
"""

from __future__ import annotations

import asyncio
import copy
import dataclasses
import itertools
import json
import time
from collections import deque
from dataclasses import dataclass, field

from sandbox.formatting import auto_entities
from sandbox.media import StoredFile, make_file

GROUP_ID = -1001000000001
# The page's (and SandboxClient's) user until another is chosen; `rnnbot sandbox` makes it an admin.
DEFAULT_USER = {"id": 1001, "first_name": "Alice", "username": "alice"}
DEFAULT_USER_ID = DEFAULT_USER["id"]
FIRST_CHANNEL_ID = -1002000000001
CHAT_ACTION_SECONDS = 5.0  # Telegram shows a chat action for 5 s or until the bot's next message
MAX_EVENTS_PER_CHAT = 2000


@dataclass
class User:
    id: int
    first_name: str
    username: str | None = None
    last_name: str | None = None
    language_code: str | None = "en"
    is_bot: bool = False
    blocked: bool = False  # the user has blocked the bot: sends to them answer 403

    def to_dict(self) -> dict:
        data = {"id": self.id, "is_bot": self.is_bot, "first_name": self.first_name}
        for key in ("last_name", "username", "language_code"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class Chat:
    id: int
    type: str  # private, supergroup or channel
    title: str | None = None
    username: str | None = None
    first_name: str | None = None
    bot_is_admin: bool = True  # channels only: Telegram refuses posts from non-admin bots

    def to_dict(self) -> dict:
        data = {"id": self.id, "type": self.type}
        for key in ("title", "username", "first_name"):
            if getattr(self, key):
                data[key] = getattr(self, key)
        return data


@dataclass
class ChannelSpec:
    """A channel the sandbox knows: addressable by `id` and, when given, by `@username`."""

    username: str | None = None
    id: int | None = None
    title: str | None = None
    bot_is_admin: bool = True

    @classmethod
    def coerce(cls, value: ChannelSpec | str | int | dict) -> ChannelSpec:
        if isinstance(value, ChannelSpec):
            return value
        if isinstance(value, dict):
            return cls(**value)
        if isinstance(value, int):
            return cls(id=value)
        return cls(username=value.lstrip("@"))


class Signal:
    """Wakes every waiter once per `fire()` (long polls for updates and for the page)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def fire(self) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        event = self._event
        try:
            await asyncio.wait_for(event.wait(), timeout)
            return True
        except TimeoutError:
            return False


@dataclass
class SandboxState:
    bot: User
    group_title: str = "Sandbox Group"
    users: dict[int, User] = field(default_factory=dict)
    chats: dict[int, Chat] = field(default_factory=dict)
    messages: dict[int, dict[int, dict]] = field(default_factory=dict)
    events: dict[int, deque] = field(default_factory=dict)
    updates: list[dict] = field(default_factory=list)  # not yet confirmed by an offset
    update_log: deque = field(default_factory=lambda: deque(maxlen=1000))
    callback_queries: dict[str, dict] = field(default_factory=dict)
    inline_queries: dict[str, dict] = field(default_factory=dict)
    files: dict[str, StoredFile] = field(default_factory=dict)
    commands: dict[str, list[dict]] = field(default_factory=dict)  # key: commands_key(scope, language)
    descriptions: dict[str, str] = field(default_factory=dict)  # setMyDescription, by language ("": any)
    short_descriptions: dict[str, str] = field(default_factory=dict)  # setMyShortDescription
    reply_keyboards: dict[int, dict | None] = field(default_factory=dict)  # per chat, for the page
    webhook: dict | None = None
    allowed_updates: list[str] | None = None
    calls: deque = field(default_factory=lambda: deque(maxlen=2000))  # Bot API call log
    version: int = 0
    closing: bool = False

    def __post_init__(self) -> None:
        self.usernames: dict[str, int] = {}
        self._update_ids = itertools.count(1)
        self._event_seq = itertools.count(1)
        self.next_message_ids: dict[int, int] = {}  # per chat; plain numbers, so they can be saved
        self._query_ids = itertools.count(4_000_000_001)
        self.next_file_number = 1
        self.updates_signal = Signal()
        self.change_signal = Signal()
        self.add_chat(Chat(id=GROUP_ID, type="supergroup", title=self.group_title))

    # --- directory -----------------------------------------------------------------------------

    def add_chat(self, chat: Chat) -> Chat:
        self.chats[chat.id] = chat
        self.messages.setdefault(chat.id, {})
        if chat.username:
            self.usernames[chat.username.lower()] = chat.id
        self.changed()
        return chat

    def add_channel(self, spec: ChannelSpec | str | int | dict) -> Chat:
        spec = ChannelSpec.coerce(spec)
        spec = dataclasses.replace(spec, username=spec.username.lstrip("@") if spec.username else None)
        existing = self.resolve_chat(spec.id if spec.id is not None else f"@{spec.username}")
        if existing is not None and existing.type == "channel":
            existing.bot_is_admin = spec.bot_is_admin
            existing.title = spec.title or existing.title
            self.changed()
            return existing
        taken = [c.id for c in self.chats.values() if c.type == "channel"]
        chat_id = spec.id if spec.id is not None else min(taken + [FIRST_CHANNEL_ID + 1]) - 1
        title = spec.title or (spec.username and f"@{spec.username}") or f"Channel {chat_id}"
        return self.add_chat(Chat(id=chat_id, type="channel", title=title, username=spec.username,
                                  bot_is_admin=spec.bot_is_admin))

    def channels(self) -> list[Chat]:
        return [c for c in self.chats.values() if c.type == "channel"]

    def resolve_chat(self, chat_id: int | str | None) -> Chat | None:
        """A chat by numeric id or "@username"; None when Telegram would say "chat not found"."""
        if isinstance(chat_id, str):
            if chat_id.startswith("@"):
                found = self.usernames.get(chat_id[1:].lower())
                return self.chats.get(found) if found is not None else None
            try:
                chat_id = int(chat_id)
            except ValueError:
                return None
        return self.chats.get(chat_id) if chat_id is not None else None

    def commands_for(self, chat_id: int, language: str = "") -> list[dict]:
        """The command menu a private chat shows: its own scope, else all private chats, else the
        default; in each, the user's language first (Telegram's order)."""
        scopes = ({"type": "chat", "chat_id": chat_id}, {"type": "all_private_chats"}, {"type": "default"})
        for scope in scopes:
            for code in dict.fromkeys((language, "")):
                key = commands_key(scope, code)
                if key in self.commands:
                    return self.commands[key]
        return []

    def ensure_user(self, user_id: int, first_name: str | None = None,
                    username: str | None = None) -> User:
        user = self.users.get(user_id)
        if user is None:
            user = self.users[user_id] = User(id=user_id, first_name=first_name or f"User {user_id}",
                                              username=username)
            self.changed()
        elif first_name or username:
            user.first_name = first_name or user.first_name
            user.username = username or user.username
        return user

    def private_chat(self, user: User) -> Chat:
        """The user's chat with the bot, opened the first time the user writes (as /start does)."""
        chat = self.chats.get(user.id)
        if chat is None:
            chat = self.add_chat(Chat(id=user.id, type="private", first_name=user.first_name,
                                      username=user.username))
        return chat

    # --- messages ------------------------------------------------------------------------------

    def add_message(self, chat: Chat, sender: User | None, **fields) -> dict:
        message_id = self.next_message_ids.get(chat.id, 1)
        self.next_message_ids[chat.id] = message_id + 1
        message = {"message_id": message_id, "date": int(time.time()), "chat": chat.to_dict()}
        if chat.type == "channel":
            message["sender_chat"] = chat.to_dict()
        elif sender is not None:
            message["from"] = sender.to_dict()
        message.update({k: v for k, v in fields.items() if v not in (None, [], "")})
        self.messages.setdefault(chat.id, {})[message["message_id"]] = message
        self.log_event(chat.id, "message", message_id=message["message_id"],
                       message=copy.deepcopy(message))
        return message

    def get_message(self, chat_id: int, message_id: int) -> dict | None:
        return self.messages.get(chat_id, {}).get(message_id)

    def edit_message(self, message: dict, **fields) -> dict:
        for key, value in fields.items():
            if value in (None, [], ""):
                message.pop(key, None)
            else:
                message[key] = value
        message["edit_date"] = int(time.time())
        self.log_event(message["chat"]["id"], "edit", message_id=message["message_id"],
                       message=copy.deepcopy(message))
        return message

    def delete_message(self, chat_id: int, message_id: int) -> bool:
        if self.messages.get(chat_id, {}).pop(message_id, None) is None:
            return False
        self.log_event(chat_id, "delete", message_id=message_id)
        return True

    def chat_messages(self, chat_id: int, limit: int | None = None) -> list[dict]:
        found = list(self.messages.get(chat_id, {}).values())
        return found[-limit:] if limit else found

    def user_message(self, user: User, chat: Chat, text: str, reply_to: int | None = None,
                     **extra) -> dict:
        """A message the user writes; the bot receives it as an update."""
        entities = extra.pop("entities", None) or auto_entities(text)
        replied = self.get_message(chat.id, reply_to) if reply_to else None
        message = self.add_message(chat, user, text=text, entities=entities,
                                   reply_to_message=_without_reply(replied), **extra)
        self.push_update("message", copy.deepcopy(message))
        return message

    # --- chat actions --------------------------------------------------------------------------

    def record_action(self, chat: Chat, action: str) -> None:
        self.log_event(chat.id, "chat_action", action=action)

    def chat_actions(self, chat_id: int) -> list[dict]:
        return [e for e in self.events.get(chat_id, ()) if e["type"] == "chat_action"]

    def current_action(self, chat_id: int) -> tuple[str, float] | None:
        """(action, seconds left) while the bot's last chat action is still shown, else None."""
        for event in reversed(self.events.get(chat_id, ())):
            if event["type"] == "message" and "from" in event["message"] \
                    and event["message"]["from"]["id"] == self.bot.id:
                return None  # a bot message ends the indicator, as in Telegram clients
            if event["type"] == "chat_action":
                left = event["time"] + CHAT_ACTION_SECONDS - time.time()
                return (event["action"], left) if left > 0 else None
        return None

    # --- updates -------------------------------------------------------------------------------

    def push_update(self, kind: str, payload: dict) -> dict:
        update = {"update_id": next(self._update_ids), kind: payload}
        self.updates.append(update)
        self.update_log.append(copy.deepcopy(update))
        self.updates_signal.fire()
        self.changed()
        return update

    def take_updates(self, offset: int | None, limit: int) -> list[dict]:
        """Confirm updates below `offset` (negative: keep only the last -offset) and list the rest."""
        if offset is not None and offset < 0:
            self.updates = self.updates[offset:]
        elif offset is not None:
            self.updates = [u for u in self.updates if u["update_id"] >= offset]
        if self.allowed_updates:
            self.updates = [u for u in self.updates if _update_kind(u) in self.allowed_updates]
        return copy.deepcopy(self.updates[:limit])

    def drop_pending_updates(self) -> None:
        self.updates.clear()

    # --- queries -------------------------------------------------------------------------------

    def new_query_id(self) -> str:
        return str(next(self._query_ids))

    def callback_answers(self) -> list[dict]:
        return [q for q in self.callback_queries.values() if q["answered"]]

    # --- files ---------------------------------------------------------------------------------

    def store_file(self, data: bytes, kind: str = "photos") -> StoredFile:
        stored = make_file(self.next_file_number, data, kind)
        self.next_file_number += 1
        self.files[stored.file_id] = stored
        return stored

    def file_by_path(self, path: str) -> StoredFile | None:
        return next((f for f in self.files.values() if f.file_path == path), None)

    # --- change tracking -----------------------------------------------------------------------

    def log_event(self, chat_id: int, kind: str, **data) -> dict:
        event = {"seq": next(self._event_seq), "time": time.time(), "chat_id": chat_id,
                 "type": kind, **data}
        self.events.setdefault(chat_id, deque(maxlen=MAX_EVENTS_PER_CHAT)).append(event)
        self.changed()
        return event

    def chat_events(self, chat_id: int, since: int = 0) -> list[dict]:
        return [e for e in self.events.get(chat_id, ()) if e["seq"] > since]

    def changed(self) -> None:
        self.version += 1
        self.change_signal.fire()

    def close(self) -> None:
        """Release every long poll so the server can stop at once."""
        self.closing = True
        self.updates_signal.fire()
        self.change_signal.fire()


def commands_key(scope: dict, language: str = "") -> str:
    """How setMyCommands files a menu: its scope and language."""
    return json.dumps(scope, sort_keys=True) + "|" + language


def _without_reply(message: dict | None) -> dict | None:
    """Telegram nests a replied-to message one level deep only."""
    if message is None:
        return None
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


def _update_kind(update: dict) -> str:
    return next(k for k in update if k != "update_id")
