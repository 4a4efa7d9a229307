"""Prometheus metrics, served at GET /metrics by the health server (bot/health.py) of `rnnbot serve`
and `rnnbot scheduler`.

Each process builds one `Metrics`, with its own registry, so several bots in one process (the
tests) never register a name twice. Scrapes read the live objects: the queue depth, the loaded
models and the last post are looked up when Prometheus asks.

    rnnbot_completions_total{outcome}         ok, rate_limited, busy (queue full), error
    rnnbot_completion_latency_seconds         request to completed text (what completions.latency_ms stores)
    rnnbot_generation_queue_depth             requests waiting for the worker
    rnnbot_worker_batch_size                  requests per Generator.complete call
    rnnbot_generated_characters_total         by the worker, for users and for posts
    rnnbot_posts_total{status}                sent, failed, missed, taken (another process has the slot)
    rnnbot_seconds_since_last_post            since the latest sent post in the database (NaN: none yet)
    rnnbot_model_info{name, default, step, val_loss, val_bpc, corpus}   one series per loaded model
"""

from __future__ import annotations

import logging
import math
from collections.abc import Callable
from datetime import datetime

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest
from prometheus_client.core import InfoMetricFamily

log = logging.getLogger(__name__)

COMPLETION_OUTCOMES = ("ok", "rate_limited", "busy", "error")
POST_STATUSES = ("sent", "failed", "missed", "taken")
LATENCY_BUCKETS = (0.05, 0.1, 0.25, 0.5, 1.0, 2.5, 5.0, 10.0, 30.0, 60.0)
BATCH_BUCKETS = (1, 2, 4, 8, 16, 32, 64, 128, 256)


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.completions = Counter("rnnbot_completions", "Completion requests by outcome", ["outcome"], registry=r)
        for outcome in COMPLETION_OUTCOMES:  # every series exists from the start, at 0
            self.completions.labels(outcome)
        self.latency = Histogram("rnnbot_completion_latency_seconds", "From the request to the completed text",
                                 buckets=LATENCY_BUCKETS, registry=r)
        self.queue_depth = Gauge("rnnbot_generation_queue_depth", "Requests waiting for the worker", registry=r)
        self.batch_size = Histogram("rnnbot_worker_batch_size", "Requests per batched model call",
                                    buckets=BATCH_BUCKETS, registry=r)
        self.characters = Counter("rnnbot_generated_characters", "Characters the model generated", registry=r)
        self.posts = Counter("rnnbot_posts", "Channel post attempts by status", ["status"], registry=r)
        for status in POST_STATUSES:
            self.posts.labels(status)
        self.since_last_post = Gauge("rnnbot_seconds_since_last_post",
                                     "Seconds since the latest sent post (NaN: none yet)", registry=r)
        self.since_last_post.set(math.nan)

    # ----- what the live objects say, read at scrape time -----
    def watch_queue(self, pending: Callable[[], int]) -> None:
        self.queue_depth.set_function(pending)

    def watch_models(self, store) -> None:
        """rnnbot_model_info: one series per model the ModelStore serves (it changes on /reload)."""
        self.registry.register(_ModelInfo(store))

    def watch_last_post(self, last_sent_at: Callable[[], datetime | None], now: Callable[[], datetime]) -> None:
        def seconds() -> float:
            try:
                when = last_sent_at()
            except Exception as exc:  # a scrape must not fail because the database is away
                log.warning("metrics: cannot read the last post (%s)", type(exc).__name__)
                return math.nan
            return math.nan if when is None else max(0.0, (now() - when).total_seconds())

        self.since_last_post.set_function(seconds)

    # ----- events -----
    def completion(self, outcome: str, latency_s: float | None = None) -> None:
        self.completions.labels(outcome).inc()
        if latency_s is not None:
            self.latency.observe(latency_s)

    def batch(self, size: int, characters: int) -> None:
        self.batch_size.observe(size)
        self.characters.inc(characters)

    def post(self, status: str) -> None:
        self.posts.labels(status).inc()

    def render(self) -> bytes:
        """The text exposition format; may call the database (run it off the event loop)."""
        return generate_latest(self.registry)


class _ModelInfo:
    def __init__(self, store):
        self.store = store

    def describe(self):
        return []  # the labels vary with the models; nothing to check at registration

    def collect(self):
        family = InfoMetricFamily("rnnbot_model", "A model being served, with its evaluation figures",
                                  labels=["name"])
        for name in self.store.names():
            checkpoint = self.store.get(name).checkpoint
            labels = {"default": str(name == self.store.default).lower()}
            if checkpoint is not None:
                labels["step"] = str(checkpoint.step)
                labels["corpus"] = checkpoint.corpus or ""
                for key in ("val_loss", "val_bpc"):
                    value = checkpoint.metrics.get(key)
                    labels[key] = "" if value is None else f"{value:.4f}"
            family.add_metric([name], labels)
        yield family
