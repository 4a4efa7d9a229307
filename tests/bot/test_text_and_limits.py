import html
import re

from bot.ratelimit import RateLimiter
from bot.text import TELEGRAM_LIMIT, render_html


def unescape_all(messages):
    return html.unescape("".join(re.sub(r"</?b>", "", m) for m in messages))


def test_html_escaping_of_model_output():
    [message] = render_html([("if a < b && c > d", True), (" then *x* <i>", False)])
    assert message == "<b>if a &lt; b &amp;&amp; c &gt; d</b> then *x* &lt;i&gt;"


def test_long_output_is_split_under_the_limit_without_losing_text():
    prompt, completion = "<" * 5000, "word & more\n" * 900
    messages = render_html([(prompt, True), (completion, False)])
    assert len(messages) > 2
    assert all(len(m) <= TELEGRAM_LIMIT for m in messages)
    assert all(m.count("<b>") == m.count("</b>") for m in messages)  # tags never cut
    assert unescape_all(messages) == prompt + completion
    # breaks prefer line ends where the text has them
    plain = [m for m in messages if "<b>" not in m]
    assert all(m.endswith("\n") for m in plain[:-1])


def test_rate_limiter_sliding_window():
    now = [0.0]
    limiter = RateLimiter(count=2, window_s=10, clock=lambda: now[0])
    assert limiter.check(1) == 0 and limiter.check(1) == 0
    assert limiter.check(1) == 10  # third in the window: wait 10 s
    assert limiter.check(2) == 0  # other users are not affected
    now[0] = 10.0
    assert limiter.check(1) == 0
