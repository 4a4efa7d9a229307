"""Telegram text formatting: parse_mode HTML / MarkdownV2 / Markdown into plain text + entities.

Modelled on tdlib's parsers (what the Bot API server runs), with one deliberate difference: a bare
``&`` in HTML is refused here, while Telegram keeps it literally. Being stricter than Telegram
catches missing ``html.escape`` in the bot before it reaches real users.

Entity offsets and lengths are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

MAX_MESSAGE_LENGTH = 4096
MAX_CAPTION_LENGTH = 1024


class EntityParseError(ValueError):
    """Text that Telegram would refuse with 400 "can't parse entities: ..."."""


class UnsupportedParseMode(ValueError):
    """A parse_mode other than HTML, MarkdownV2 or Markdown."""


def utf16_len(text: str) -> int:
    return len(text.encode("utf-16-le")) // 2


@dataclass
class _Builder:
    """Accumulates output text and tracks its length in UTF-16 units."""

    parts: list[str] = field(default_factory=list)
    length: int = 0
    entities: list[dict] = field(default_factory=list)

    def add(self, text: str) -> None:
        self.parts.append(text)
        self.length += utf16_len(text)

    def entity(self, start: int, kind: str, **extra) -> None:
        if self.length > start:  # Telegram drops empty entities
            self.entities.append({"type": kind, "offset": start, "length": self.length - start, **extra})

    def result(self) -> tuple[str, list[dict]]:
        entities = sorted(self.entities, key=lambda e: (e["offset"], -e["length"]))
        return "".join(self.parts), entities


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


# --- HTML -------------------------------------------------------------------------------------

_HTML_SIMPLE = {"b": "bold", "strong": "bold", "i": "italic", "em": "italic", "u": "underline",
                "ins": "underline", "s": "strikethrough", "strike": "strikethrough",
                "del": "strikethrough", "tg-spoiler": "spoiler"}
_HTML_TAGS = set(_HTML_SIMPLE) | {"a", "span", "code", "pre", "blockquote", "tg-emoji"}
_HTML_CHAR_ENTITY = re.compile(r"&(#[0-9]{1,7}|#x[0-9a-fA-F]{1,6}|lt|gt|amp|quot);")
_NAMED = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ATTR = re.compile(r"""\s*([a-zA-Z-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


def parse_html(text: str) -> tuple[str, list[dict]]:
    out = _Builder()
    stack: list[tuple[str, dict, int]] = []  # (tag, attributes, output offset at start)
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "&":
            match = _HTML_CHAR_ENTITY.match(text, i)
            if not match:
                raise EntityParseError(f"Unsupported character entity at byte offset {_byte_offset(text, i)}")
            name = match.group(1)
            if name.startswith("#x"):
                out.add(chr(int(name[2:], 16)))
            elif name.startswith("#"):
                out.add(chr(int(name[1:])))
            else:
                out.add(_NAMED[name])
            i = match.end()
        elif ch != "<":
            out.add(ch)
            i += 1
        elif text.startswith("</", i):
            i = _html_end_tag(text, i, stack, out)
        else:
            i = _html_start_tag(text, i, stack, out)
    if stack:
        raise EntityParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    return out.result()


def _html_start_tag(text: str, i: int, stack: list, out: _Builder) -> int:
    begin = i
    i += 1
    while i < len(text) and not text[i].isspace() and text[i] != ">":
        i += 1
    if i >= len(text):
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    tag = text[begin + 1:i].lower()
    if tag not in _HTML_TAGS:
        raise EntityParseError(f'Unsupported start tag "{tag}" at byte offset {_byte_offset(text, begin)}')
    attributes: dict[str, str] = {}
    while i < len(text) and text[i] != ">":
        match = _ATTR.match(text, i)
        if not match or match.end() == i:
            raise EntityParseError(f"Empty attribute name in the tag \"{tag}\" at byte offset "
                                   f"{_byte_offset(text, begin)}")
        value = match.group(2) or ""
        if value[:1] in "\"'":
            value = value[1:-1]
        attributes[match.group(1).lower()] = _unescape_attribute(value)
        i = match.end()
        while i < len(text) and text[i].isspace():
            i += 1
    if i >= len(text):
        raise EntityParseError(f"Unclosed start tag at byte offset {_byte_offset(text, begin)}")
    if tag == "span" and attributes.get("class") != "tg-spoiler":
        raise EntityParseError('Tag "span" must have class "tg-spoiler" at byte offset '
                               f"{_byte_offset(text, begin)}")
    stack.append((tag, attributes, out.length))
    return i + 1


def _html_end_tag(text: str, i: int, stack: list, out: _Builder) -> int:
    begin = i
    close = text.find(">", i)
    if close < 0:
        raise EntityParseError(f"Unclosed end tag at byte offset {_byte_offset(text, begin)}")
    tag = text[i + 2:close].strip().lower()
    if not stack:
        raise EntityParseError(f"Unexpected end tag at byte offset {_byte_offset(text, begin)}")
    open_tag, attributes, start = stack.pop()
    if tag != open_tag:
        raise EntityParseError(f'Unmatched end tag at byte offset {_byte_offset(text, begin)}, '
                               f'expected "</{open_tag}>", found "</{tag}>"')
    _html_entity(open_tag, attributes, start, stack, out)
    return close + 1


def _html_entity(tag: str, attributes: dict, start: int, stack: list, out: _Builder) -> None:
    if tag in _HTML_SIMPLE or tag == "span":
        out.entity(start, _HTML_SIMPLE.get(tag, "spoiler"))
    elif tag == "a":
        if attributes.get("href"):
            out.entity(start, "text_link", url=attributes["href"])
    elif tag == "code":
        language = attributes.get("class", "")
        if stack and stack[-1][0] == "pre" and language.startswith("language-"):
            stack[-1][1]["language"] = language[len("language-"):]
        elif not (stack and stack[-1][0] == "pre"):
            out.entity(start, "code")
    elif tag == "pre":
        extra = {"language": attributes["language"]} if attributes.get("language") else {}
        out.entity(start, "pre", **extra)
    elif tag == "blockquote":
        out.entity(start, "expandable_blockquote" if "expandable" in attributes else "blockquote")
    elif tag == "tg-emoji":
        out.entity(start, "custom_emoji", custom_emoji_id=attributes.get("emoji-id", ""))


def _unescape_attribute(value: str) -> str:
    return _HTML_CHAR_ENTITY.sub(lambda m: (_NAMED.get(m.group(1)) or chr(
        int(m.group(1)[2:], 16) if m.group(1).startswith("#x") else int(m.group(1)[1:]))), value)


# --- MarkdownV2 -------------------------------------------------------------------------------

_MDV2_RESERVED = set("_*[]()~`>#+-=|{}.!")
_MDV2_NAMES = {"bold": "Bold", "italic": "Italic", "underline": "Underline",
               "strikethrough": "Strikethrough", "spoiler": "Spoiler", "code": "Code", "pre": "Pre",
               "text_link": "TextUrl", "blockquote": "Blockquote"}


def parse_markdown_v2(text: str) -> tuple[str, list[dict]]:
    out = _Builder()
    stack: list[tuple[str, int, int, dict]] = []  # (type, output offset, source index, extra)
    i = 0
    while i < len(text):
        ch = text[i]
        nxt = text[i + 1] if i + 1 < len(text) else ""
        top = stack[-1][0] if stack else None
        if ch == "\\" and nxt and ord(nxt) <= 126:
            out.add(nxt)
            i += 2
            continue
        if top in ("code", "pre"):
            closer = "```" if top == "pre" else "`"
            if text.startswith(closer, i):
                kind, start, _, extra = stack.pop()
                out.entity(start, kind, **extra)
                i += len(closer)
            else:
                out.add(ch)
                i += 1
            continue
        if ch == "\n" and top == "blockquote" and nxt != ">":
            kind, start, _, extra = stack.pop()
            out.entity(start, kind)
        if ch not in _MDV2_RESERVED:
            out.add(ch)
            i += 1
            continue
        i = _mdv2_markup(text, i, stack, out)
    if stack and stack[-1][0] == "blockquote":
        kind, start, _, _ = stack.pop()
        out.entity(start, kind)
    if stack:
        kind, _, source, _ = stack[-1]
        raise EntityParseError(f"Can't find end of {_MDV2_NAMES[kind]} entity at byte offset "
                               f"{_byte_offset(text, source)}")
    return out.result()


def _mdv2_markup(text: str, i: int, stack: list, out: _Builder) -> int:
    """Handle a reserved character outside code: close or open an entity, else refuse it."""
    ch = text[i]
    nxt = text[i + 1] if i + 1 < len(text) else ""
    open_kinds = [entry[0] for entry in stack]
    token, kind = {"*": ("*", "bold"), "~": ("~", "strikethrough")}.get(ch, (None, None))
    if ch == "_":
        token, kind = ("__", "underline") if nxt == "_" else ("_", "italic")
        if kind == "underline" and "underline" not in open_kinds and "italic" in open_kinds \
                and stack[-1][0] == "italic":
            token, kind = "_", "italic"  # "___" closing italic before starting underline
    elif ch == "|" and nxt == "|":
        token, kind = "||", "spoiler"
    if kind:
        if stack and stack[-1][0] == kind:
            _, start, _, extra = stack.pop()
            out.entity(start, kind, **extra)
        elif kind in open_kinds:
            raise EntityParseError(f"Can't find end of {_MDV2_NAMES[stack[-1][0]]} entity at byte "
                                   f"offset {_byte_offset(text, stack[-1][2])}")
        else:
            stack.append((kind, out.length, i, {}))
        return i + len(token)
    if ch == "`":
        if text.startswith("```", i):
            # "```lang\n...```": the first line names the language when it is a single word.
            newline, close = text.find("\n", i + 3), text.find("```", i + 3)
            first_line = text[i + 3:newline] if 0 <= newline < (close if close >= 0 else len(text)) else None
            extra = {"language": first_line} if first_line and " " not in first_line else {}
            skip = newline + 1 if first_line is not None and (extra or not first_line) else i + 3
            stack.append(("pre", out.length, i, extra))
            return skip
        stack.append(("code", out.length, i, {}))
        return i + 1
    if ch == "[":
        stack.append(("text_link", out.length, i, {}))
        return i + 1
    if ch == "]" and stack and stack[-1][0] == "text_link":
        _, start, _, _ = stack.pop()
        if nxt == "(":
            url, end = _mdv2_url(text, i + 2)
            if url:
                out.entity(start, "text_link", url=url)
            return end
        return i + 1
    if ch == ">" and (i == 0 or text[i - 1] == "\n"):
        if not stack:
            stack.append(("blockquote", out.length, i, {}))
        return i + 1
    raise EntityParseError(f"Character '{ch}' is reserved and must be escaped with the preceding '\\'")


def _mdv2_url(text: str, i: int) -> tuple[str, int]:
    url = []
    while i < len(text) and text[i] != ")":
        if text[i] == "\\" and i + 1 < len(text):
            i += 1
        url.append(text[i])
        i += 1
    if i >= len(text):
        raise EntityParseError("Can't find end of a URL at byte offset "
                               f"{_byte_offset(text, i - len(url))}")
    return "".join(url), i + 1


# --- Markdown (legacy) ------------------------------------------------------------------------

def parse_markdown(text: str) -> tuple[str, list[dict]]:
    out = _Builder()
    i = 0
    while i < len(text):
        ch = text[i]
        if ch == "\\" and i + 1 < len(text) and text[i + 1] in "_*`[":
            out.add(text[i + 1])
            i += 2
            continue
        if ch not in "_*`[":
            out.add(ch)
            i += 1
            continue
        begin, start = i, out.length
        if ch == "[":
            close = text.find("]", i + 1)
            if close < 0 or not text.startswith("(", close + 1) or text.find(")", close) < 0:
                raise EntityParseError(f"Can't find end of the entity starting at byte offset "
                                       f"{_byte_offset(text, begin)}")
            out.add(text[i + 1:close])
            url_end = text.find(")", close)
            out.entity(start, "text_link", url=text[close + 2:url_end])
            i = url_end + 1
            continue
        token = "```" if text.startswith("```", i) else ch
        close = text.find(token, i + len(token))
        if close < 0:
            raise EntityParseError(f"Can't find end of the entity starting at byte offset "
                                   f"{_byte_offset(text, begin)}")
        out.add(text[i + len(token):close])
        kind = {"_": "italic", "*": "bold", "`": "code", "```": "pre"}[token]
        out.entity(start, kind)
        i = close + len(token)
    return out.result()


# --- Entry points -----------------------------------------------------------------------------

_PARSERS = {"html": parse_html, "markdownv2": parse_markdown_v2, "markdown": parse_markdown}
# tdlib's boundaries: a command is not glued to a word, "/" or "<>" (so "</b>" is no command).
_AUTO = re.compile(r"(?<![\w/<>])(?P<bot_command>/[A-Za-z0-9_]{1,64}(?:@[A-Za-z0-9_]{3,32})?)"
                   r"(?![\w/<>])"
                   r"|(?<![\w@])(?P<mention>@[A-Za-z0-9_]{4,32})(?!\w)"
                   r"|(?P<url>https?://[^\s<>\"]+[^\s<>\".,;:!?)\]'])")


def parse_text(text: str, parse_mode: str | None, entities: list[dict] | None = None
               ) -> tuple[str, list[dict]]:
    """Return (plain text, entities) as Telegram would store the message."""
    if parse_mode:
        parser = _PARSERS.get(parse_mode.lower())
        if parser is None:
            raise UnsupportedParseMode(parse_mode)
        text, entities = parser(text)
    entities = list(entities or [])
    return text, sorted(entities + auto_entities(text, entities),
                        key=lambda e: (e["offset"], -e["length"]))


def auto_entities(text: str, existing: list[dict] = ()) -> list[dict]:
    """Commands, mentions and links that Telegram detects in plain text on its own."""
    found = []
    for match in _AUTO.finditer(text):
        offset = utf16_len(text[:match.start()])
        length = utf16_len(match.group())
        if not any(e["offset"] < offset + length and offset < e["offset"] + e["length"]
                   for e in existing):
            found.append({"type": match.lastgroup, "offset": offset, "length": length})
    return found
