"""parse_mode parsing: plain text, UTF-16 entity offsets and Telegram's refusals."""

from __future__ import annotations

import re

import pytest

from sandbox.formatting import EntityParseError, parse_html, parse_markdown, parse_markdown_v2, parse_text, utf16_len


def kinds(entities: list[dict]) -> list[tuple]:
    return [(e["type"], e["offset"], e["length"]) for e in entities]


def test_html_nesting_links_and_character_entities():
    text, entities = parse_html('<b>a <i>b</i></b> &lt;&amp;&gt;&quot;&#33;'
                                '<a href="https://x.org/?a=1&amp;b=2">c</a>')
    assert text == 'a b <&>"!c'
    assert kinds(entities) == [("bold", 0, 3), ("italic", 2, 1), ("text_link", 9, 1)]
    assert entities[-1]["url"] == "https://x.org/?a=1&b=2"


def test_html_pre_with_language_and_spoilers():
    text, entities = parse_html('<pre><code class="language-python">x = 1</code></pre>'
                                '<span class="tg-spoiler">s</span><tg-spoiler>t</tg-spoiler>')
    assert text == "x = 1st"
    assert entities[0] == {"type": "pre", "offset": 0, "length": 5, "language": "python"}
    assert kinds(entities[1:]) == [("spoiler", 5, 1), ("spoiler", 6, 1)]


def test_offsets_count_utf16_units():
    text, entities = parse_html("😀 <b>ok</b>")
    assert utf16_len("😀") == 2
    assert kinds(entities) == [("bold", 3, 2)]


@pytest.mark.parametrize(("source", "error"), [
    ("1 < 2", 'Unsupported start tag "" at byte offset 2'),
    ("<script>x</script>", 'Unsupported start tag "script" at byte offset 0'),
    ("Tom & Jerry", "Unsupported character entity at byte offset 4"),
    ("<b>x", 'Can\'t find end tag corresponding to start tag "b"'),
    ("<b>x</i>", 'Unmatched end tag at byte offset 4, expected "</b>", found "</i>"'),
    ("x</b>", "Unexpected end tag at byte offset 1"),
    ('<span class="x">y</span>', 'Tag "span" must have class "tg-spoiler"'),
])
def test_html_refusals(source, error):
    with pytest.raises(EntityParseError, match="^" + re.escape(error)):
        parse_html(source)


def test_markdown_v2_entities_and_escapes():
    text, entities = parse_markdown_v2(r"*b* _i_ __u__ ~s~ ||p|| `c` [l](https://x.org/\)) 3\.16")
    assert text == "b i u s p c l 3.16"
    assert [e["type"] for e in entities] == ["bold", "italic", "underline", "strikethrough",
                                             "spoiler", "code", "text_link"]
    assert entities[-1]["url"] == "https://x.org/)"
    text, entities = parse_markdown_v2("```python\nprint(1)```")
    assert (text, entities) == ("print(1)", [{"type": "pre", "offset": 0, "length": 8,
                                              "language": "python"}])


@pytest.mark.parametrize(("source", "error"), [
    ("John 3.16", "Character '.' is reserved"),
    ("a-b", "Character '-' is reserved"),
    ("*bold", "Can't find end of Bold entity at byte offset 0"),
    ("_it", "Can't find end of Italic entity"),
])
def test_markdown_v2_refusals(source, error):
    with pytest.raises(EntityParseError, match=re.escape(error)):
        parse_markdown_v2(source)


def test_legacy_markdown():
    text, entities = parse_markdown("*b* _i_ `c` [l](https://x.org)")
    assert text == "b i c l"
    assert [e["type"] for e in entities] == ["bold", "italic", "code", "text_link"]
    with pytest.raises(EntityParseError, match="Can't find end of the entity"):
        parse_markdown("*b")


def test_commands_mentions_and_urls_are_detected_in_plain_text():
    text, entities = parse_text("/start@rnnbot_sandbox_bot hi @alice https://x.org. </b>", None)
    assert kinds(entities) == [("bot_command", 0, 25), ("mention", 29, 6), ("url", 36, 13)]
    # Explicit entities win over detected ones.
    _, entities = parse_text("<code>/start</code>", "HTML")
    assert kinds(entities) == [("code", 0, 6)]
