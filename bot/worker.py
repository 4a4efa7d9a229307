"""The generation worker: the model never runs on the event loop.

Handlers `await worker.complete(...)`; requests wait in a bounded queue, and one thread takes
everything queued (up to `max_batch`, after waiting `batch_wait_s` for company) and completes it
in as few `Generator.complete` calls as the requests' options allow. A full queue raises
`QueueFull` at once, so a busy bot answers "try again shortly" instead of hanging.
"""

from __future__ import annotations

import asyncio
import logging
import queue
import secrets
import threading
import time
from collections import defaultdict
from dataclasses import dataclass, field

import torch

from models.generator import Completion, Generator

log = logging.getLogger(__name__)


class QueueFull(Exception):
    """Too many requests are waiting for the model."""


@dataclass
class Request:
    prompt: str
    max_chars: int
    temperature: float
    model: str
    stop_at: str | None
    top_k: int | None
    top_p: float | None
    seed: int | None
    future: asyncio.Future
    loop: asyncio.AbstractEventLoop
    queued_at: float = field(default_factory=time.perf_counter)

    @property
    def batch_key(self) -> tuple:
        # Generator.complete takes these once per call; lengths and temperatures may differ per row.
        return (self.model, self.stop_at, self.top_k, self.top_p)


class ModelStore:
    """Named generators; swapped as a whole on reload, so a running batch keeps its own."""

    def __init__(self, paths: dict[str, str], default: str, precision: str = "auto",
                 device: torch.device | str = "cpu"):
        self._generators: dict[str, Generator] = {}
        self.default = default
        self.precision = precision  # GENERATION_PRECISION (models/precision.py)
        self.device = torch.device(device)  # DEVICE (models/device.py): every model samples there
        self.replace(paths, default)

    def replace(self, paths: dict[str, str], default: str) -> None:
        generators = {name: Generator.load(path, self.precision, self.device) for name, path in paths.items()}
        if default not in generators:
            raise ValueError(f"default model {default!r} is not among {sorted(generators)}")
        self._generators, self.default = generators, default

    def get(self, name: str | None) -> Generator:
        generators = self._generators
        if name is None or name not in generators:
            if name is not None:
                log.info("model %r is not loaded; using the default %r", name, self.default)
            return generators[self.default]
        return generators[name]

    def names(self) -> list[str]:
        return sorted(self._generators)

    def resolve(self, name: str | None) -> str:
        return name if name in self._generators else self.default


class GenerationWorker:
    def __init__(self, store: ModelStore, queue_size: int = 64, max_batch: int = 64, batch_wait_s: float = 0.005,
                 metrics=None):
        """`metrics`: a bot.metrics.Metrics that counts batches and generated characters."""
        self.store = store
        self.metrics = metrics
        self.max_batch, self.batch_wait_s = max_batch, batch_wait_s
        self._queue: queue.Queue[Request | None] = queue.Queue(maxsize=queue_size)
        self._thread: threading.Thread | None = None
        self.batches = 0  # how many Generator.complete calls ran (for tests and /stats)
        self.largest_batch = 0

    def start(self) -> None:
        if self._thread is None:
            self._thread = threading.Thread(target=self._run, name="generation-worker", daemon=True)
            self._thread.start()

    def stop(self, timeout: float = 30.0) -> None:
        if self._thread is not None:
            self._queue.put(None)  # wakes the thread; it finishes what was queued first
            self._thread.join(timeout)
            self._thread = None

    @property
    def pending(self) -> int:
        return self._queue.qsize()

    async def complete(self, prompt: str, *, max_chars: int, temperature: float, model: str | None = None,
                       stop_at: str | None = None, top_k: int | None = None, top_p: float | None = None,
                       seed: int | None = None) -> Completion:
        loop = asyncio.get_running_loop()
        request = Request(prompt, max_chars, temperature, self.store.resolve(model), stop_at, top_k, top_p, seed,
                          loop.create_future(), loop)
        try:
            self._queue.put_nowait(request)
        except queue.Full:
            raise QueueFull from None
        return await request.future

    # ----- worker thread -----
    def _run(self) -> None:
        while True:
            first = self._queue.get()
            if first is None:
                return
            batch = [first]
            deadline = time.perf_counter() + self.batch_wait_s
            stopping = False
            while len(batch) < self.max_batch:
                try:
                    item = self._queue.get(timeout=max(0.0, deadline - time.perf_counter()))
                except queue.Empty:
                    break
                if item is None:
                    stopping = True
                    break
                batch.append(item)
            self._complete_batch(batch)
            if stopping:
                return

    def _complete_batch(self, batch: list[Request]) -> None:
        groups: dict[tuple, list[Request]] = defaultdict(list)
        for request in batch:
            groups[request.batch_key].append(request)
        for (model, stop_at, top_k, top_p), requests in groups.items():
            seeds = [r.seed if r.seed is not None else secrets.randbits(62) for r in requests]
            try:
                completions = self.store.get(model).complete(
                    [r.prompt for r in requests], max_chars=[r.max_chars for r in requests],
                    temperature=[r.temperature for r in requests], top_k=top_k, top_p=top_p, seed=seeds,
                    stop_at=stop_at)
            except Exception as exc:  # delivered to every waiting handler, logged by their error path
                for r in requests:
                    _deliver(r, None, exc)
                continue
            finally:
                self.batches += 1
                self.largest_batch = max(self.largest_batch, len(requests))
            if self.metrics is not None:
                self.metrics.batch(len(requests), sum(len(c.text) for c in completions))
            for r, completion in zip(requests, completions):
                _deliver(r, completion, None)


def _deliver(request: Request, result, exc) -> None:
    try:
        request.loop.call_soon_threadsafe(_settle, request.future, result, exc)
    except RuntimeError:  # the requester's event loop has closed: nobody is waiting any more
        log.debug("dropped a completion for a closed event loop")


def _settle(future: asyncio.Future, result, exc) -> None:
    if future.done():  # the handler gave up (cancelled); nothing to deliver
        return
    if exc is not None:
        future.set_exception(exc)
    else:
        future.set_result(result)
