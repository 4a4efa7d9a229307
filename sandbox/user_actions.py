"""What a Telegram user does: write, press inline buttons, type and pick inline queries.

Each action changes the state and queues the update the bot would receive.
Errors are `ActionError` (answered 400 by the control API), never Bot API errors.
"""

from __future__ import annotations

import copy
import time

from sandbox.formatting import EntityParseError, UnsupportedParseMode, auto_entities, parse_text
from sandbox.state import GROUP_ID, Chat, SandboxState, User


class ActionError(ValueError):
    pass


def user_chat(state: SandboxState, user: User, chat_id: int | str | None) -> Chat:
    """The user's private chat with the bot (default) or the group; users cannot post to channels."""
    if chat_id in (None, "", "private", user.id, str(user.id)):
        return state.private_chat(user)
    if chat_id == "group":
        chat_id = GROUP_ID
    chat = state.resolve_chat(chat_id)
    if chat is None or chat.type == "channel":
        raise ActionError(f"users can write only to their private chat or the group, not {chat_id}")
    return chat


def send_text(state: SandboxState, user: User, text: str, chat_id: int | str | None = None,
              reply_to: int | None = None) -> dict:
    if not text or not text.strip():
        raise ActionError("text is empty")
    user.blocked = False  # writing to the bot again undoes a block, as /start does in Telegram
    chat = user_chat(state, user, chat_id)
    if reply_to and state.get_message(chat.id, reply_to) is None:
        raise ActionError(f"message {reply_to} not found in chat {chat.id}")
    return state.user_message(user, chat, text, reply_to)


def edit_text(state: SandboxState, user: User, chat_id: int | str | None, message_id: int, text: str) -> dict:
    """The user edits one of their messages; the bot receives an edited_message update."""
    if not text or not text.strip():
        raise ActionError("text is empty")
    chat = user_chat(state, user, chat_id)
    message = state.get_message(chat.id, int(message_id))
    if message is None or message.get("from", {}).get("id") != user.id:
        raise ActionError(f"user {user.id} has no message {message_id} in chat {chat.id}")
    state.edit_message(message, text=text, entities=auto_entities(text))
    state.push_update("edited_message", copy.deepcopy(message))
    return message


def find_button(message: dict, data: str | None, text: str | None) -> dict:
    rows = (message.get("reply_markup") or {}).get("inline_keyboard", [])
    for button in (b for row in rows for b in row):
        if (data is not None and button.get("callback_data") == data) or \
                (text is not None and button.get("text") == text):
            return button
    raise ActionError(f"message {message['message_id']} has no button with "
                      f"{'data ' + repr(data) if data is not None else 'text ' + repr(text)}")


def press_button(state: SandboxState, user: User, chat_id: int | str, message_id: int,
                 data: str | None = None, text: str | None = None, forge: bool = False) -> dict:
    """Press an inline button; a callback button sends the bot a callback_query update.

    `forge`: send `data` although no button carries it, as a modified client can."""
    chat = state.resolve_chat(chat_id) if chat_id not in (None, "private") else state.chats.get(user.id)
    message = state.get_message(chat.id, int(message_id)) if chat else None
    if message is None:
        raise ActionError(f"message {message_id} not found in chat {chat_id}")
    if forge and data is None:
        raise ActionError("a forged press needs its data")
    button = {"text": "(forged)", "callback_data": data} if forge else find_button(message, data, text)
    if "callback_data" not in button:
        # URL and switch-inline buttons act in the client only; report what they would do.
        return {"button": button}
    query_id = state.new_query_id()
    state.callback_queries[query_id] = {
        "id": query_id, "user_id": user.id, "chat_id": chat.id, "message_id": message["message_id"],
        "data": button["callback_data"], "time": time.time(), "answered": False, "answer": None}
    state.push_update("callback_query", {
        "id": query_id, "from": user.to_dict(), "message": copy.deepcopy(message),
        "chat_instance": str(chat.id), "data": button["callback_data"]})
    return {"button": button, "callback_query_id": query_id}


def inline_query(state: SandboxState, user: User, query: str, offset: str = "",
                 chat_id: int | str | None = None) -> dict:
    """Type `@bot query`; the bot receives an inline_query update."""
    chat = state.resolve_chat(chat_id) if chat_id not in (None, "", "private") else None
    chat_type = "sender" if chat is None or chat.id == user.id else chat.type
    query_id = state.new_query_id()
    state.inline_queries[query_id] = {
        "id": query_id, "user_id": user.id, "query": query, "offset": offset,
        "time": time.time(), "answered": False, "answer": None}
    state.push_update("inline_query", {"id": query_id, "from": user.to_dict(), "query": query,
                                       "offset": offset, "chat_type": chat_type})
    return {"inline_query_id": query_id}


def choose_inline_result(state: SandboxState, user: User, inline_query_id: str, result_id: str,
                         chat_id: int | str | None = None) -> dict:
    """Pick one of the bot's inline results: the user posts it, marked as sent via the bot."""
    query = state.inline_queries.get(str(inline_query_id))
    if query is None or not query["answered"]:
        raise ActionError(f"inline query {inline_query_id} has no answer yet")
    result = next((r for r in query["answer"]["results"] if str(r["id"]) == str(result_id)), None)
    if result is None:
        raise ActionError(f"inline query {inline_query_id} has no result {result_id!r}")
    chat = user_chat(state, user, chat_id)
    content = result.get("input_message_content") or {}
    extra = {"via_bot": state.bot.to_dict(), "reply_markup": result.get("reply_markup")}
    if "message_text" in content:
        try:
            text, entities = parse_text(content["message_text"], content.get("parse_mode"),
                                        content.get("entities"))
        except (EntityParseError, UnsupportedParseMode) as error:
            raise ActionError(f"result text does not parse: {error}") from None
        return state.user_message(user, chat, text, entities=entities, **extra)
    if result.get("photo_file_id") in state.files:
        photo = state.files[result["photo_file_id"]].photo_size()
        message = state.add_message(chat, user, photo=[photo], caption=result.get("caption"),
                                    **extra)
        state.push_update("message", copy.deepcopy(message))
        return message
    raise ActionError(f"the sandbox cannot post a {result['type']!r} result without message text")


UPDATE_KINDS = ("message", "edited_message", "channel_post", "callback_query", "inline_query", "my_chat_member")


def raw_update(state: SandboxState, kind: str, payload: dict) -> dict:
    """Queue an update exactly as given: what a forged webhook call or a broken client could deliver
    (a message without `from`, ...). Nothing in the sandbox's state changes."""
    if kind not in UPDATE_KINDS:
        raise ActionError(f"kind must be one of {', '.join(UPDATE_KINDS)}")
    if not isinstance(payload, dict):
        raise ActionError("payload must be a JSON object")
    return state.push_update(kind, copy.deepcopy(payload))
