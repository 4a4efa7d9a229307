"""The Bot API route `/bot{token}/{method}`, plus the methods about the bot itself and updates."""

from __future__ import annotations

import asyncio
import logging
import re
import time

from aiohttp import web

# Imported for their @api_method registrations.
from sandbox import api_messages, api_profile, api_queries  # noqa: F401
from sandbox.context import METHODS, SANDBOX_KEY, Call, api_method
from sandbox.params import ApiError, Params, bad_request
from sandbox.state import commands_key
from sandbox.webhook import webhook_url_problem

logger = logging.getLogger(__name__)

MAX_LONG_POLL_SECONDS = 50
# A client that cancels its long poll closes the connection; give the server this long to notice
# before calling a new getUpdates a conflicting second poller.
POLLER_GRACE_SECONDS = 0.5
_COMMAND = re.compile(r"[a-z0-9_]{1,32}")
_SECRET_TOKEN = re.compile(r"[A-Za-z0-9_-]{1,256}")


async def handle_bot_api(request: web.Request) -> web.Response:
    sandbox = request.app[SANDBOX_KEY]
    method = request.match_info["method"]
    if request.match_info["token"] != sandbox.token:
        return ApiError(401, "Unauthorized").to_response()
    handler = METHODS.get(method.lower())
    if handler is None:
        return ApiError(404, "Not Found: method not found").to_response()
    entry = {"time": time.time(), "method": method}
    try:
        params = await Params.from_request(request)
        entry["chat_id"] = params.values.get("chat_id")
        delay = sandbox.faults.delay_for(method)
        if delay:
            await asyncio.sleep(delay)
        fault = sandbox.faults.take(method, params.values.get("chat_id"))
        if fault is not None:
            raise ApiError(fault.code, fault.description, fault.retry_after)
        result = await handler(Call(sandbox, params, request, method))
    except ApiError as error:
        entry.update(ok=False, error_code=error.code, description=error.description)
        sandbox.state.calls.append(entry)
        return error.to_response()
    except Exception:
        logger.exception("sandbox failed to answer %s", method)
        entry.update(ok=False, error_code=500, description="Internal Server Error")
        sandbox.state.calls.append(entry)
        return ApiError(500, "Internal Server Error").to_response()
    entry["ok"] = True
    sandbox.state.calls.append(entry)
    delay = sandbox.faults.delay_for(method, after=True)
    if delay:
        await asyncio.sleep(delay)
    return web.json_response({"ok": True, "result": result})


async def handle_file_download(request: web.Request) -> web.StreamResponse:
    """`/file/bot{token}/{path}`: what PTB's File.download_* fetches after getFile."""
    sandbox = request.app[SANDBOX_KEY]
    if request.match_info["token"] != sandbox.token:
        return ApiError(401, "Unauthorized").to_response()
    stored = sandbox.state.file_by_path(request.match_info["path"])
    if stored is None:
        return ApiError(404, "Not Found").to_response()
    return web.Response(body=stored.data, content_type=stored.mime_type)


@api_method("getMe")
async def get_me(call: Call) -> dict:
    return {**call.state.bot.to_dict(), "can_join_groups": True,
            "can_read_all_group_messages": True, "supports_inline_queries": call.sandbox.inline_mode,
            "can_connect_to_business": False, "has_main_web_app": False}


@api_method("logOut")
@api_method("close")
async def log_out(call: Call) -> bool:
    return True


@api_method("getUpdates")
async def get_updates(call: Call) -> list[dict]:
    sandbox, params = call.sandbox, call.params
    if sandbox.state.webhook:
        raise ApiError(409, "Conflict: can't use getUpdates method while webhook is active; "
                            "use deleteWebhook to delete the webhook first")
    offset = params.int("offset")
    limit = min(max(params.int("limit", 100), 1), 100)
    timeout = min(max(params.float("timeout", 0.0), 0.0), MAX_LONG_POLL_SECONDS)
    allowed = params.json("allowed_updates")
    if allowed is not None:
        sandbox.state.allowed_updates = list(allowed) or None  # [] means the default set
    await _claim_polling(call)
    try:
        deadline = time.monotonic() + timeout
        while True:
            state = sandbox.state  # re-read: a reset replaces it
            updates = state.take_updates(offset, limit)
            left = deadline - time.monotonic()
            if updates or state.closing or left <= 0:
                return updates
            await state.updates_signal.wait(left)
    finally:
        sandbox.pollers.pop(id(call.request), None)


async def _claim_polling(call: Call) -> None:
    """Refuse a getUpdates while another is waiting, as Telegram does, with 409."""
    pollers = call.sandbox.pollers
    deadline = time.monotonic() + POLLER_GRACE_SECONDS
    while True:
        for key, request in list(pollers.items()):
            if request.transport is None or request.transport.is_closing():
                del pollers[key]  # its client went away (e.g. PTB stopped polling)
        if not pollers:
            pollers[id(call.request)] = call.request
            return
        if time.monotonic() >= deadline:
            raise ApiError(409, "Conflict: terminated by other getUpdates request; make sure that "
                                "only one bot instance is running")
        await asyncio.sleep(0.02)


@api_method("setWebhook")
async def set_webhook(call: Call) -> bool:
    url = call.params.str("url", "")
    if not url:
        call.state.webhook = None
        return True
    problem = webhook_url_problem(url)
    if problem:
        raise bad_request(problem)
    secret = call.params.str("secret_token", "")
    if secret and not _SECRET_TOKEN.fullmatch(secret):
        raise bad_request("secret token contains unallowed characters")
    if call.params.bool("drop_pending_updates"):
        call.state.drop_pending_updates()
    allowed = call.params.json("allowed_updates")
    if allowed is not None:
        call.state.allowed_updates = list(allowed) or None
    call.state.webhook = {"url": url, "max_connections": call.params.int("max_connections", 40),
                          "secret_token": secret}
    call.state.updates_signal.fire()  # webhook delivery (webhook.py) starts with what is pending
    return True


@api_method("deleteWebhook")
async def delete_webhook(call: Call) -> bool:
    call.state.webhook = None
    if call.params.bool("drop_pending_updates"):
        call.state.drop_pending_updates()
    return True


@api_method("getWebhookInfo")
async def get_webhook_info(call: Call) -> dict:
    webhook = call.state.webhook or {}
    info = {"url": webhook.get("url", ""), "has_custom_certificate": False,
            "pending_update_count": len(call.state.updates)}
    if webhook:
        info["max_connections"] = webhook["max_connections"]
        info.update({k: webhook[k] for k in ("last_error_date", "last_error_message") if k in webhook})
        if call.state.allowed_updates:
            info["allowed_updates"] = call.state.allowed_updates
    return info


CHAT_SCOPES = ("chat", "chat_administrators", "chat_member")


def _commands_key(call: Call) -> str:
    scope = call.params.json("scope") or {"type": "default"}
    if not isinstance(scope, dict):
        raise bad_request("can't parse BotCommandScope JSON object")
    if scope.get("type") in CHAT_SCOPES and call.state.resolve_chat(scope.get("chat_id")) is None:
        raise bad_request("chat not found")  # e.g. a user who has never started the bot
    return commands_key(scope, call.params.str("language_code") or "")


@api_method("setMyCommands")
async def set_my_commands(call: Call) -> bool:
    commands = call.params.json("commands")
    if not isinstance(commands, list) or len(commands) > 100:
        raise bad_request("can't parse commands JSON object")
    for command in commands:
        if not isinstance(command, dict) or not _COMMAND.fullmatch(str(command.get("command", ""))):
            raise bad_request("BOT_COMMAND_INVALID")
        if not 1 <= len(str(command.get("description", ""))) <= 256:
            raise bad_request("BOT_COMMAND_DESCRIPTION_INVALID")
    call.state.commands[_commands_key(call)] = [
        {"command": c["command"], "description": c["description"]} for c in commands]
    call.state.changed()
    return True


@api_method("getMyCommands")
async def get_my_commands(call: Call) -> list[dict]:
    return call.state.commands.get(_commands_key(call), [])


@api_method("deleteMyCommands")
async def delete_my_commands(call: Call) -> bool:
    call.state.commands.pop(_commands_key(call), None)
    call.state.changed()
    return True


@api_method("getChat")
async def get_chat(call: Call) -> dict:
    chat = call.state.resolve_chat(call.params.chat_id())
    if chat is None:
        raise bad_request("chat not found")
    no_gifts = {"unlimited_gifts": False, "limited_gifts": False, "unique_gifts": False,
                "premium_subscription": False, "gifts_from_channels": False}
    return {**chat.to_dict(), "accent_color_id": 0, "max_reaction_count": 11,
            "accepted_gift_types": no_gifts}


@api_method("getChatMember")
async def get_chat_member(call: Call) -> dict:
    state = call.state
    chat = state.resolve_chat(call.params.chat_id())
    if chat is None:
        raise bad_request("chat not found")
    user_id = call.params.int("user_id")
    user = state.bot if user_id == state.bot.id else state.users.get(user_id)
    if user is None:
        raise bad_request("user not found")
    if user is state.bot and chat.type == "channel":
        if not chat.bot_is_admin:
            return {"status": "left", "user": user.to_dict()}
        rights = ("can_be_edited", "is_anonymous", "can_manage_chat", "can_delete_messages",
                  "can_manage_video_chats", "can_restrict_members", "can_promote_members",
                  "can_change_info", "can_invite_users", "can_post_messages", "can_edit_messages",
                  "can_post_stories", "can_edit_stories", "can_delete_stories")
        flags = {right: right not in ("can_be_edited", "is_anonymous") for right in rights}
        return {"status": "administrator", "user": user.to_dict(), **flags}
    return {"status": "member", "user": user.to_dict()}


@api_method("getFile")
async def get_file(call: Call) -> dict:
    stored = call.state.files.get(call.params.str("file_id", ""))
    if stored is None:
        raise bad_request("invalid file_id")
    return stored.file_object()
