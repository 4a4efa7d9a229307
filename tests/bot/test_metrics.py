"""GET /metrics on the health server: Prometheus text that moves with real traffic through the sandbox."""

from __future__ import annotations

import aiohttp
from prometheus_client.parser import text_string_to_metric_families

from bot.metrics import Metrics
from tests.helpers import free_port


async def scrape(port: int) -> dict[tuple[str, tuple], float]:
    """Every sample as {(name, sorted labels): value}."""
    async with aiohttp.ClientSession() as session, session.get(f"http://127.0.0.1:{port}/metrics") as response:
        assert response.status == 200
        assert response.headers["Content-Type"].startswith("text/plain; version=")
        text = await response.text()
    return {(s.name, tuple(sorted(s.labels.items()))): s.value
            for family in text_string_to_metric_families(text) for s in family.samples}


def value(samples: dict, name: str, **labels) -> float:
    return samples[(name, tuple(sorted(labels.items())))]


async def test_metrics_move_with_traffic(start_bot, alice):
    port = free_port()
    bot = await start_bot(health_port=port, health_host="127.0.0.1", rate_limit_count=2)
    before = await scrape(port)
    assert value(before, "rnnbot_completions_total", outcome="ok") == 0
    assert value(before, "rnnbot_generation_queue_depth") == 0

    await alice.ask(None, "the quick ")
    await alice.ask(None, "the lazy ")
    refused = await alice.ask(None, "the brown ")  # third within the window: rate limited
    assert not refused["text"].startswith("the brown ")
    after = await scrape(port)

    assert value(after, "rnnbot_completions_total", outcome="ok") == 2
    assert value(after, "rnnbot_completions_total", outcome="rate_limited") == 1
    assert value(after, "rnnbot_completions_total", outcome="busy") == 0
    assert value(after, "rnnbot_completion_latency_seconds_count") == 2
    assert value(after, "rnnbot_completion_latency_seconds_sum") > 0
    assert value(after, "rnnbot_worker_batch_size_count") >= 1
    assert value(after, "rnnbot_generated_characters_total") >= 2  # each reply continued the prompt
    # the served model, with its evaluation figure as labels
    [(name, labels)] = [key for key in after if key[0] == "rnnbot_model_info"]
    labels = dict(labels)
    assert labels["name"] == bot.services.models.default and labels["default"] == "true"
    checkpoint = bot.services.models.get(None).checkpoint
    assert labels["val_bpc"] == f"{checkpoint.metrics['val_bpc']:.4f}" and labels["step"] == str(checkpoint.step)
    assert after[(name, tuple(sorted(labels.items())))] == 1.0


def test_each_process_part_has_its_own_registry():
    # several bots in one process (the tests) must not register the same names twice
    first, second = Metrics(), Metrics()
    first.completion("ok", 0.2)
    assert b'rnnbot_completions_total{outcome="ok"} 1.0' in first.render()
    assert b'rnnbot_completions_total{outcome="ok"} 0.0' in second.render()
    assert b"rnnbot_seconds_since_last_post NaN" in second.render()  # no post yet
