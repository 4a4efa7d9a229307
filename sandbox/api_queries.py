"""Bot API methods answering callback queries (button presses) and inline queries."""

from __future__ import annotations

import time

from sandbox.api_messages import format_text, validate_button
from sandbox.context import Call, api_method
from sandbox.params import bad_request

QUERY_INVALID = "query is too old and response timeout expired or query ID is invalid"
MAX_INLINE_RESULTS = 50


def open_query(call: Call, queries: dict[str, dict], name: str) -> dict:
    """The query being answered; Telegram refuses unknown, answered or expired ones alike."""
    query = queries.get(call.params.str(name, ""))
    timeout = call.sandbox.query_timeout
    if query is None or query["answered"] or (timeout and time.time() - query["time"] > timeout):
        raise bad_request(QUERY_INVALID)
    return query


@api_method("answerCallbackQuery")
async def answer_callback_query(call: Call) -> bool:
    query = open_query(call, call.state.callback_queries, "callback_query_id")
    answer = {"text": call.params.str("text"), "show_alert": call.params.bool("show_alert"),
              "url": call.params.str("url"), "cache_time": call.params.int("cache_time", 0),
              "time": time.time()}
    if answer["text"] and len(answer["text"]) > 200:
        raise bad_request("MESSAGE_TOO_LONG")
    query.update(answered=True, answer=answer)
    call.state.log_event(query["chat_id"], "callback_answer", callback_query_id=query["id"],
                         message_id=query["message_id"], text=answer["text"],
                         show_alert=answer["show_alert"])
    return True


@api_method("answerInlineQuery")
async def answer_inline_query(call: Call) -> bool:
    query = open_query(call, call.state.inline_queries, "inline_query_id")
    results = call.params.json("results", what="inline query results")
    if not isinstance(results, list):
        raise bad_request("can't parse inline query results JSON object")
    if len(results) > MAX_INLINE_RESULTS:
        raise bad_request("RESULTS_TOO_MUCH")
    seen: set[str] = set()
    for result in results:
        check_result(result, seen)
    query.update(answered=True, answer={
        "results": results, "cache_time": call.params.int("cache_time", 300),
        "is_personal": call.params.bool("is_personal"),
        "next_offset": call.params.str("next_offset", ""), "button": call.params.json("button"),
        "time": time.time()})
    call.state.changed()
    return True


def check_result(result: object, seen: set[str]) -> None:
    if not isinstance(result, dict) or not result.get("type"):
        raise bad_request("can't parse inline query result JSON object")
    result_id = str(result.get("id", ""))
    if not 1 <= len(result_id.encode()) <= 64:
        raise bad_request("RESULT_ID_INVALID")
    if result_id in seen:
        raise bad_request("RESULT_ID_DUPLICATE")
    seen.add(result_id)
    if result["type"] == "article" and not (result.get("title") and
                                            result.get("input_message_content")):
        raise bad_request("can't parse inline query result: article needs title and "
                          "input_message_content")
    content = result.get("input_message_content") or {}
    if "message_text" in content:
        # Telegram parses the text when the answer arrives, so bad markup fails here.
        format_text(content["message_text"], content.get("parse_mode"), content.get("entities"))
    for button in (b for row in (result.get("reply_markup") or {}).get("inline_keyboard", [])
                   for b in row):
        validate_button(button)
