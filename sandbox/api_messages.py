"""Bot API methods that send, edit and delete messages, with Telegram's validation and errors."""

from __future__ import annotations

import copy

from sandbox.context import Call, api_method
from sandbox.formatting import (
    MAX_CAPTION_LENGTH,
    MAX_MESSAGE_LENGTH,
    EntityParseError,
    UnsupportedParseMode,
    parse_text,
)
from sandbox.media import MAX_PHOTO_BYTES
from sandbox.params import Upload, bad_request
from sandbox.state import Chat

CHAT_ACTIONS = {"typing", "upload_photo", "record_video", "upload_video", "record_voice",
                "upload_voice", "upload_document", "choose_sticker", "find_location",
                "record_video_note", "upload_video_note"}
NOT_MODIFIED = ("message is not modified: specified new message content and reply markup are "
                "exactly the same as a current content and reply markup of the message")
_BUTTON_ACTIONS = {"url", "callback_data", "web_app", "login_url", "switch_inline_query",
                   "switch_inline_query_current_chat", "switch_inline_query_chosen_chat",
                   "copy_text", "callback_game", "pay"}


def formatted(call: Call, text_key: str = "text", mode_key: str = "parse_mode",
              entities_key: str = "entities", limit: int = MAX_MESSAGE_LENGTH,
              required: bool = True) -> tuple[str | None, list[dict]]:
    """Text and entities after parse_mode, refused with Telegram's 400s."""
    raw = call.params.str(text_key)
    if not raw:
        if required:
            raise bad_request("message text is empty")
        return None, []
    return format_text(raw, call.params.str(mode_key), call.params.json(entities_key), limit,
                       is_caption=text_key == "caption")


def format_text(raw: str, parse_mode: str | None, entities: list | None,
                limit: int = MAX_MESSAGE_LENGTH, is_caption: bool = False
                ) -> tuple[str, list[dict]]:
    try:
        text, entities = parse_text(raw, parse_mode, entities)
    except UnsupportedParseMode:
        raise bad_request("unsupported parse_mode") from None
    except EntityParseError as error:
        raise bad_request(f"can't parse entities: {error}") from None
    if not text.strip() and not is_caption:
        raise bad_request("message text is empty")
    if len(text) > limit:
        raise bad_request("message caption is too long" if is_caption else "message is too long")
    return text, entities


def inline_markup(call: Call, chat: Chat | None = None) -> dict | None:
    """The reply_markup when it is an inline keyboard (the only kind a Message carries)."""
    markup = call.params.json("reply_markup", what="reply keyboard markup")
    if markup is None:
        return None
    if not isinstance(markup, dict):
        raise bad_request("can't parse reply keyboard markup JSON object")
    if "inline_keyboard" not in markup:
        # Reply keyboards live in the chat, not in the message; the page shows them.
        if chat is not None:
            call.state.reply_keyboards[chat.id] = None if markup.get("remove_keyboard") else markup
        return None
    rows = markup["inline_keyboard"]
    if not isinstance(rows, list) or not all(isinstance(row, list) for row in rows):
        raise bad_request("can't parse inline keyboard markup JSON object")
    for button in (b for row in rows for b in row):
        validate_button(button)
    return {"inline_keyboard": rows} if any(rows) else None


def validate_button(button: object) -> None:
    if not isinstance(button, dict) or not button.get("text"):
        raise bad_request("can't parse inline keyboard button: Text is empty")
    if not _BUTTON_ACTIONS & button.keys():
        raise bad_request("can't parse inline keyboard button: Text buttons are unallowed in the "
                          "inline keyboard")
    if "callback_data" in button and not 1 <= len(str(button["callback_data"]).encode()) <= 64:
        raise bad_request("BUTTON_DATA_INVALID")


def replied_message(call: Call, chat: Chat) -> dict | None:
    reply = call.params.json("reply_parameters", what="reply parameters")
    if reply is None and call.params.has("reply_to_message_id"):
        reply = {"message_id": call.params.int("reply_to_message_id"),
                 "allow_sending_without_reply": call.params.bool("allow_sending_without_reply")}
    if not reply:
        return None
    source = call.state.resolve_chat(reply.get("chat_id", chat.id)) or chat
    message = call.state.get_message(source.id, int(reply.get("message_id", 0)))
    if message is None:
        if reply.get("allow_sending_without_reply"):
            return None
        raise bad_request("message to be replied not found")
    return {k: copy.deepcopy(v) for k, v in message.items() if k != "reply_to_message"}


@api_method("sendMessage")
async def send_message(call: Call) -> dict:
    chat = call.target_chat()
    text, entities = formatted(call)
    message = call.state.add_message(
        chat, call.state.bot, text=text, entities=entities, reply_markup=inline_markup(call, chat),
        reply_to_message=replied_message(call, chat),
        link_preview_options=call.params.json("link_preview_options"))
    return copy.deepcopy(message)


@api_method("sendPhoto")
async def send_photo(call: Call) -> dict:
    chat = call.target_chat()
    photo = call.params.input_file("photo")
    if isinstance(photo, Upload):
        if not photo.data:
            raise bad_request("file must be non-empty")
        if len(photo.data) > MAX_PHOTO_BYTES:
            raise bad_request("file is too big")
        stored = call.state.store_file(photo.data)
        if not stored.width:
            raise bad_request("IMAGE_PROCESS_FAILED")
    elif photo in call.state.files:
        stored = call.state.files[photo]
    elif not photo:
        raise bad_request("there is no photo in the request")
    else:
        # Telegram would download an HTTP URL; the sandbox has no network, so it refuses it.
        raise bad_request("wrong file identifier/HTTP URL specified")
    caption, caption_entities = formatted(call, "caption", entities_key="caption_entities",
                                          limit=MAX_CAPTION_LENGTH, required=False)
    message = call.state.add_message(
        chat, call.state.bot, photo=[stored.photo_size()], caption=caption,
        caption_entities=caption_entities, reply_markup=inline_markup(call, chat),
        reply_to_message=replied_message(call, chat))
    return copy.deepcopy(message)


@api_method("sendChatAction")
async def send_chat_action(call: Call) -> bool:
    chat = call.target_chat()
    action = call.params.str("action", "")
    if action not in CHAT_ACTIONS:
        raise bad_request("wrong parameter action in request")
    call.state.record_action(chat, action)
    return True


def message_to_edit(call: Call) -> dict:
    if call.params.has("inline_message_id"):
        raise bad_request("MESSAGE_ID_INVALID")  # the sandbox does not track inline messages
    chat = call.target_chat()
    message = call.state.get_message(chat.id, call.params.int("message_id", 0))
    if message is None:
        raise bad_request("message to edit not found")
    sender = message.get("from", {}).get("id")
    if chat.type != "channel" and sender != call.state.bot.id:
        raise bad_request("message can't be edited")
    return message


@api_method("editMessageText")
async def edit_message_text(call: Call) -> dict:
    message = message_to_edit(call)
    if "text" not in message:
        raise bad_request("there is no text in the message to edit")
    text, entities = formatted(call)
    markup = inline_markup(call)
    if (text, entities, markup) == (message["text"], message.get("entities", []),
                                    message.get("reply_markup")):
        raise bad_request(NOT_MODIFIED)
    edited = call.state.edit_message(message, text=text, entities=entities, reply_markup=markup)
    return copy.deepcopy(edited)


@api_method("editMessageCaption")
async def edit_message_caption(call: Call) -> dict:
    message = message_to_edit(call)
    if "photo" not in message:
        raise bad_request("there is no caption in the message to edit")
    caption, entities = formatted(call, "caption", entities_key="caption_entities",
                                  limit=MAX_CAPTION_LENGTH, required=False)
    markup = inline_markup(call)
    if (caption, entities, markup) == (message.get("caption"), message.get("caption_entities", []),
                                       message.get("reply_markup")):
        raise bad_request(NOT_MODIFIED)
    edited = call.state.edit_message(message, caption=caption, caption_entities=entities,
                                     reply_markup=markup)
    return copy.deepcopy(edited)


@api_method("editMessageReplyMarkup")
async def edit_message_reply_markup(call: Call) -> dict:
    message = message_to_edit(call)
    markup = inline_markup(call)
    if markup == message.get("reply_markup"):
        raise bad_request(NOT_MODIFIED)
    return copy.deepcopy(call.state.edit_message(message, reply_markup=markup))


@api_method("deleteMessage")
async def delete_message(call: Call) -> bool:
    chat = call.target_chat()
    if not call.state.delete_message(chat.id, call.params.int("message_id", 0)):
        raise bad_request("message to delete not found")
    return True
