"""The JSON control API under /sandbox/api: act as users, read what the bot did, inject faults.

Answers are {"ok": true, "result": ...} or {"ok": false, "error": "..."} with status 400/404.
"""

from __future__ import annotations

import time

from aiohttp import web

from sandbox import user_actions
from sandbox.context import SANDBOX_KEY, Sandbox
from sandbox.formatting import parse_text
from sandbox.state import DEFAULT_USER, GROUP_ID, SandboxState, User, commands_key

MAX_VIEW_WAIT = 25.0
VIEW_MESSAGES = 200

routes = web.RouteTableDef()


def ok(result: object) -> web.Response:
    return web.json_response({"ok": True, "result": result})


def fail(message: str, status: int = 400) -> web.Response:
    return web.json_response({"ok": False, "error": message}, status=status)


@web.middleware
async def control_errors(request: web.Request, handler):
    try:
        return await handler(request)
    except user_actions.ActionError as error:
        return fail(str(error))
    except (KeyError, TypeError, ValueError) as error:
        if not request.path.startswith("/sandbox/api/"):
            raise
        return fail(f"bad request: {error!r}")


def sandbox_of(request: web.Request) -> Sandbox:
    return request.app[SANDBOX_KEY]


async def body(request: web.Request) -> dict:
    if not request.can_read_body:
        return {}
    data = await request.json()
    if not isinstance(data, dict):
        raise ValueError("the body must be a JSON object")
    return data


def acting_user(state: SandboxState, data: dict) -> User:
    """The user in the request ({"user_id", "first_name", "username"}), created on first use."""
    user_id = int(data.get("user_id") or DEFAULT_USER["id"])
    default = DEFAULT_USER if user_id == DEFAULT_USER["id"] else {}
    return state.ensure_user(user_id, data.get("first_name") or default.get("first_name"),
                             data.get("username") or default.get("username"))


def chat_or_404(state: SandboxState, chat_id: str):
    chat = state.resolve_chat(GROUP_ID if chat_id == "group" else chat_id)
    if chat is None:
        raise web.HTTPNotFound(text=f'{{"ok": false, "error": "chat {chat_id} not found"}}',
                               content_type="application/json")
    return chat


# --- overview --------------------------------------------------------------------------------

@routes.get("/sandbox/api/state")
async def get_state(request: web.Request) -> web.Response:
    sandbox = sandbox_of(request)
    state = sandbox.state
    return ok({"bot": state.bot.to_dict(), "version": state.version,
               "users": [vars(u) for u in state.users.values()],
               "chats": [{**c.to_dict(), "bot_is_admin": c.bot_is_admin} for c in state.chats.values()],
               "commands": state.commands, "webhook": state.webhook,
               "pending_updates": len(state.updates), "faults": sandbox.faults.to_dict()})


@routes.post("/sandbox/api/reset")
async def reset(request: web.Request) -> web.Response:
    sandbox_of(request).reset()
    return ok(True)


@routes.post("/sandbox/api/users")
async def upsert_user(request: web.Request) -> web.Response:
    data = await body(request)
    user = acting_user(sandbox_of(request).state, {**data, "user_id": data.get("id")})
    if "blocked" in data:
        user.blocked = bool(data["blocked"])
    return ok(vars(user))


# --- acting as a user ------------------------------------------------------------------------

@routes.post("/sandbox/api/send")
async def send(request: web.Request) -> web.Response:
    data = await body(request)
    state = sandbox_of(request).state
    message = user_actions.send_text(state, acting_user(state, data), str(data.get("text", "")),
                                     data.get("chat_id"), data.get("reply_to_message_id"))
    return ok(message)


@routes.post("/sandbox/api/edit")
async def edit(request: web.Request) -> web.Response:
    data = await body(request)
    state = sandbox_of(request).state
    return ok(user_actions.edit_text(state, acting_user(state, data), data.get("chat_id"), int(data["message_id"]),
                                     str(data.get("text", ""))))


@routes.post("/sandbox/api/press")
async def press(request: web.Request) -> web.Response:
    data = await body(request)
    state = sandbox_of(request).state
    return ok(user_actions.press_button(state, acting_user(state, data), data.get("chat_id"),
                                        int(data["message_id"]), data.get("data"), data.get("text"),
                                        forge=bool(data.get("forge"))))


@routes.post("/sandbox/api/raw_update")
async def raw_update(request: web.Request) -> web.Response:
    data = await body(request)
    return ok(user_actions.raw_update(sandbox_of(request).state, str(data.get("kind", "")), data.get("payload")))


@routes.post("/sandbox/api/inline_query")
async def inline_query(request: web.Request) -> web.Response:
    data = await body(request)
    sandbox = sandbox_of(request)
    if not sandbox.inline_mode:
        raise user_actions.ActionError(f"@{sandbox.bot_username} has no inline mode (@BotFather: /setinline)")
    state = sandbox.state
    return ok(user_actions.inline_query(state, acting_user(state, data), str(data.get("query", "")),
                                        str(data.get("offset", "")), data.get("chat_id")))


@routes.post("/sandbox/api/inline_result")
async def inline_result(request: web.Request) -> web.Response:
    data = await body(request)
    state = sandbox_of(request).state
    return ok(user_actions.choose_inline_result(state, acting_user(state, data),
                                                str(data["inline_query_id"]), str(data["result_id"]),
                                                data.get("chat_id")))


# --- reading what the bot did ----------------------------------------------------------------

@routes.get("/sandbox/api/chats/{chat_id}/messages")
async def chat_messages(request: web.Request) -> web.Response:
    state = sandbox_of(request).state
    chat = chat_or_404(state, request.match_info["chat_id"])
    return ok(state.chat_messages(chat.id, int(request.query.get("limit", 0)) or None))


@routes.get("/sandbox/api/chats/{chat_id}/events")
async def chat_events(request: web.Request) -> web.Response:
    state = sandbox_of(request).state
    chat = chat_or_404(state, request.match_info["chat_id"])
    return ok(state.chat_events(chat.id, int(request.query.get("since", 0))))


@routes.get("/sandbox/api/chats/{chat_id}/actions")
async def chat_actions(request: web.Request) -> web.Response:
    state = sandbox_of(request).state
    chat = chat_or_404(state, request.match_info["chat_id"])
    return ok(state.chat_actions(chat.id))


@routes.get("/sandbox/api/channels")
async def channels(request: web.Request) -> web.Response:
    return ok([{**c.to_dict(), "bot_is_admin": c.bot_is_admin}
               for c in sandbox_of(request).state.channels()])


@routes.post("/sandbox/api/channels")
async def add_channel(request: web.Request) -> web.Response:
    data = await body(request)
    spec = {k: data[k] for k in ("username", "id", "title", "bot_is_admin") if k in data}
    chat = sandbox_of(request).state.add_channel(spec)
    return ok({**chat.to_dict(), "bot_is_admin": chat.bot_is_admin})


@routes.get("/sandbox/api/channels/{channel}/posts")
async def channel_posts(request: web.Request) -> web.Response:
    state = sandbox_of(request).state
    chat = chat_or_404(state, request.match_info["channel"])
    return ok(state.chat_messages(chat.id))


@routes.get("/sandbox/api/inline_answers")
async def inline_answers(request: web.Request) -> web.Response:
    query_id, user_id = request.query.get("inline_query_id"), request.query.get("user_id")
    found = [q for q in sandbox_of(request).state.inline_queries.values()
             if (not query_id or q["id"] == query_id) and (not user_id or q["user_id"] == int(user_id))]
    return ok(found)


@routes.get("/sandbox/api/callback_answers")
async def callback_answers(request: web.Request) -> web.Response:
    query_id, chat_id = request.query.get("callback_query_id"), request.query.get("chat_id")
    found = [q for q in sandbox_of(request).state.callback_queries.values()
             if (not query_id or q["id"] == query_id) and (not chat_id or q["chat_id"] == int(chat_id))]
    return ok(found)


@routes.get("/sandbox/api/updates")
async def updates(request: web.Request) -> web.Response:
    state = sandbox_of(request).state
    return ok({"pending": state.updates, "log": list(state.update_log)})


@routes.get("/sandbox/api/calls")
async def calls(request: web.Request) -> web.Response:
    method = request.query.get("method", "").lower()
    return ok([c for c in sandbox_of(request).state.calls
               if not method or c["method"].lower() == method])


# --- faults ----------------------------------------------------------------------------------

@routes.get("/sandbox/api/faults")
async def list_faults(request: web.Request) -> web.Response:
    return ok(sandbox_of(request).faults.to_dict())


@routes.post("/sandbox/api/faults")
async def add_fault(request: web.Request) -> web.Response:
    data = await body(request)
    fault = sandbox_of(request).faults.add(
        method=str(data["method"]), code=int(data["code"]), description=data.get("description", ""),
        count=data.get("count", 1), retry_after=data.get("retry_after"), chat_id=data.get("chat_id"))
    return ok(fault.to_dict())


@routes.delete("/sandbox/api/faults")
async def clear_faults(request: web.Request) -> web.Response:
    sandbox_of(request).faults.clear()
    return ok(True)


@routes.post("/sandbox/api/latency")
async def set_latency(request: web.Request) -> web.Response:
    data = await body(request)
    faults = sandbox_of(request).faults
    after = bool(data.get("after", False))
    faults.set_latency(float(data["seconds"]), str(data.get("method", "*")), after=after)
    return ok(faults.latency_after if after else faults.latency)


# --- the page --------------------------------------------------------------------------------

@routes.get("/sandbox/api/view")
async def view(request: web.Request) -> web.Response:
    """Everything the page shows; with `since=VERSION` it long-polls until something changes."""
    sandbox = sandbox_of(request)
    since = int(request.query.get("since", -1))
    deadline = time.monotonic() + min(float(request.query.get("wait", 0)), MAX_VIEW_WAIT)
    while sandbox.state.version == since and not sandbox.state.closing:
        left = deadline - time.monotonic()
        if left <= 0:
            return ok({"version": since, "unchanged": True})
        await sandbox.state.change_signal.wait(left)
    return ok({**page_view(sandbox.state, request.query), "chats_file": sandbox.chats_file})


def page_view(state: SandboxState, query) -> dict:
    user_id = int(query.get("user_id") or DEFAULT_USER["id"])
    chat_key = query.get("chat", "private")
    chat_id = user_id if chat_key == "private" else GROUP_ID if chat_key == "group" else int(chat_key)
    channels = state.channels()
    channel = state.resolve_chat(query.get("channel") or (channels[0].id if channels else None))
    action = state.current_action(chat_id)
    inline = [q for q in state.inline_queries.values() if q["user_id"] == user_id]
    return {
        "version": state.version,
        "default_user": DEFAULT_USER,
        "bot": state.bot.to_dict(),
        "users": [u.to_dict() for u in state.users.values()],
        "group": state.chats[GROUP_ID].to_dict(),
        "channels": [{**c.to_dict(), "bot_is_admin": c.bot_is_admin} for c in channels],
        "commands": state.commands_for(chat_id) if chat_key == "private"
        else state.commands.get(commands_key({"type": "default"}), []),
        "chat_id": chat_id,
        "messages": state.chat_messages(chat_id, VIEW_MESSAGES),
        "reply_keyboard": state.reply_keyboards.get(chat_id),
        "typing": {"action": action[0], "seconds_left": action[1]} if action else None,
        "callback_answers": [e for e in state.chat_events(chat_id) if e["type"] == "callback_answer"][-5:],
        "inline": inline_with_previews(inline[-1]) if inline else None,
        "channel_id": channel.id if channel else None,
        "posts": state.chat_messages(channel.id, VIEW_MESSAGES) if channel else [],
    }


def inline_with_previews(query: dict) -> dict:
    """The query plus each result's message text after parse_mode, for the page to show."""
    previews = {}
    for result in (query["answer"] or {}).get("results", []):
        content = result.get("input_message_content") or {}
        if "message_text" in content:
            try:
                text, entities = parse_text(content["message_text"], content.get("parse_mode"),
                                            content.get("entities"))
            except ValueError:  # checked when answered; a preview is not worth an error
                continue
            previews[str(result["id"])] = {"text": text, "entities": entities}
    return {**query, "previews": previews}


@routes.get("/sandbox/files/{file_id}")
async def file_content(request: web.Request) -> web.Response:
    stored = sandbox_of(request).state.files.get(request.match_info["file_id"])
    if stored is None:
        return fail("file not found", 404)
    # nosniff: the bytes are the bot's upload, so never let the browser guess them into HTML.
    return web.Response(body=stored.data, content_type=stored.mime_type,
                        headers={"X-Content-Type-Options": "nosniff"})
