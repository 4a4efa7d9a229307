"""A user's own settings: /settings (an inline keyboard), /temperature, /length, /model."""

from __future__ import annotations

import html

from sqlalchemy.orm import Session
from telegram import InlineKeyboardButton, InlineKeyboardMarkup, Update
from telegram.constants import ParseMode
from telegram.ext import ContextTypes

from bot.handlers.generation import Preferences, preferences, remember_user
from bot.services import Services, get_services
from bot.text import shorten, whole_number
from db import repositories as repo

TEMPERATURE_PRESETS = (0.5, 0.8, 1.0, 1.2)
LENGTH_PRESETS = (100, 280, 500, 1000)
MAX_TEMPERATURE = 2.0
CALLBACK_PREFIX = "settings:"
CALLBACK_PATTERN = r"^settings:"
MAX_CALLBACK_BYTES = 64  # Telegram's limit on callback_data


async def change_settings(services: Services, update: Update, **changes) -> tuple[Preferences, Preferences]:
    """Apply `changes` (temperature=, length=, model_name=) to the user; returns (before, after)."""
    def work(session: Session) -> tuple[Preferences, Preferences]:
        row = remember_user(session, services, update.effective_user, update.effective_chat)
        before = preferences(row, services.settings, services)
        if changes:
            row = repo.update_user_settings(session, user_id=row.id, **changes)
        return before, preferences(row, services.settings, services)

    return await services.database.run(work)


def settings_text(prefs: Preferences) -> str:
    return (f"<b>Your settings</b>\n"
            f"Temperature: {prefs.temperature:g} (lower is safer, higher is wilder)\n"
            f"Length: {prefs.length} characters\n"
            f"Model: {html.escape(prefs.model)}\n\n"
            "Tap a button, or type /temperature 0.7, /length 400 or /model NAME.")


def settings_keyboard(prefs: Preferences, services: Services) -> InlineKeyboardMarkup:
    def button(label: str, key: str, value, current) -> InlineKeyboardButton:
        return InlineKeyboardButton(("✓ " if value == current else "") + label,
                                    callback_data=f"{CALLBACK_PREFIX}{key}:{value}")

    max_length = services.settings.max_length
    lengths = [n for n in LENGTH_PRESETS if n <= max_length] or [max_length]
    models = [name for name in services.models.names()
              if len(f"{CALLBACK_PREFIX}model:{name}".encode()) <= MAX_CALLBACK_BYTES]
    rows = [[button(f"{t:g}", "temperature", t, prefs.temperature) for t in TEMPERATURE_PRESETS],
            [button(f"{n} chars", "length", n, prefs.length) for n in lengths]]
    if len(models) > 1:
        rows.append([button(name, "model", name, prefs.model) for name in models[:4]])
    return InlineKeyboardMarkup(rows)


async def settings_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """Show the user's settings with buttons to change them."""
    services = get_services(context)
    _, prefs = await change_settings(services, update)
    await update.effective_message.reply_text(settings_text(prefs), parse_mode=ParseMode.HTML,
                                              reply_markup=settings_keyboard(prefs, services))


async def settings_button(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """A settings button: change the setting and edit the message to show the new values."""
    services, query = get_services(context), update.callback_query
    key, _, raw = query.data.removeprefix(CALLBACK_PREFIX).partition(":")
    if key == "temperature" and raw in {f"{t}" for t in TEMPERATURE_PRESETS}:
        change, label = {"temperature": float(raw)}, f"Temperature set to {float(raw):g}"
    elif key == "length" and 1 <= (whole_number(raw) or 0) <= services.settings.max_length:
        change, label = {"length": int(raw)}, f"Length set to {int(raw)} characters"
    elif key == "model" and raw in services.models.names():
        change, label = {"model_name": raw}, f"Model set to {raw}"
    else:  # an old keyboard (e.g. a model that is no longer loaded)
        await query.answer("That option is no longer available; send /settings again.", show_alert=True)
        return
    before, after = await change_settings(services, update, **change)
    await query.answer(label if after != before else "No change: that is already your setting.")
    if after != before:
        await query.edit_message_text(settings_text(after), parse_mode=ParseMode.HTML,
                                      reply_markup=settings_keyboard(after, services))


async def temperature_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/temperature X: how random the completions are (0 = always the likeliest character)."""
    services, message = get_services(context), update.effective_message
    raw = " ".join(context.args)
    try:
        value = float(raw) if len(context.args) == 1 else None
    except ValueError:
        value = None
    if value is None or not 0 <= value <= MAX_TEMPERATURE:
        _, prefs = await change_settings(services, update)
        refused = ""
        if value is not None:
            refused = f"{value:g} is out of range, so I kept your temperature. "
        elif raw:
            refused = f"{raw[:40]} is not a number, so I kept your temperature. "
        await message.reply_text(f"{refused}Your temperature is {prefs.temperature:g}. To change it, give a "
                                 f"number from 0 to {MAX_TEMPERATURE:g}, e.g. /temperature 0.7")
        return
    await change_settings(services, update, temperature=value)
    await message.reply_text(f"Temperature set to {value:g}.")


async def length_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/length N: how many characters each completion has."""
    services, message = get_services(context), update.effective_message
    max_length = services.settings.max_length
    length = whole_number(context.args[0]) if len(context.args) == 1 else None
    if length is None or not 1 <= length <= max_length:
        _, prefs = await change_settings(services, update)
        given = " ".join(context.args)[:40]
        refused = f"{given} is not a length from 1 to {max_length}, so I kept yours. " if given else ""
        await message.reply_text(f"{refused}Your length is {prefs.length} characters. To change it, give a whole "
                                 f"number from 1 to {max_length}, e.g. /length 400")
        return
    await change_settings(services, update, length=length)
    await message.reply_text(f"Length set to {length} characters.")


async def model_command(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
    """/model: list the models; /model NAME: switch to one."""
    services, message = get_services(context), update.effective_message
    loaded = services.models.names()
    if context.args:
        name = " ".join(context.args)
        if name not in loaded:
            await message.reply_text(f"There is no loaded model called {html.escape(shorten(name))}. "
                                     "Send /model to see the list.", parse_mode=ParseMode.HTML)
            return
        await change_settings(services, update, model_name=name)
        await message.reply_text(f"Model set to {html.escape(name)}.", parse_mode=ParseMode.HTML)
        return
    _, prefs = await change_settings(services, update)
    registered = await services.database.run(lambda session: [(m.name, m.active) for m in repo.list_models(session)])
    lines = ["<b>Models</b>"]
    for name in loaded:
        marks = [m for m, on in (("default", name == services.models.default), ("yours", name == prefs.model)) if on]
        lines.append(f"• {html.escape(name)}" + (f" ({', '.join(marks)})" if marks else ""))
    idle = sorted({name for name, active in registered if name not in loaded})
    if idle:
        lines += ["", "Registered but not loaded: " + ", ".join(html.escape(n) for n in idle)]
    lines += ["", "Switch with /model NAME."]
    await message.reply_text("\n".join(lines), parse_mode=ParseMode.HTML)
