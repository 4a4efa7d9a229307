"""The generation worker batches concurrent requests into one Generator call, off the event loop."""

import asyncio
import threading

import pytest

from bot.worker import GenerationWorker, ModelStore, QueueFull
from models.generator import Generator
from models.native_lstm import native_kernel


@pytest.fixture
def store(trained_run):
    return ModelStore({"tiny": str(trained_run / "best.safetensors")}, default="tiny")


async def test_concurrent_requests_are_batched_and_match_direct_calls(store):
    worker = GenerationWorker(store, queue_size=32, max_batch=16, batch_wait_s=0.2)
    worker.start()
    try:
        prompts = [f"the {w}" for w in ("quick", "lazy", "fox", "dog", "brown", "over")]
        results = await asyncio.gather(*[
            worker.complete(p, max_chars=20 + i, temperature=0.7, seed=100 + i) for i, p in enumerate(prompts)])
    finally:
        worker.stop()
    assert worker.batches == 1 and worker.largest_batch == len(prompts)
    direct = Generator.load(store.get("tiny").checkpoint.path, store.precision)
    for i, (p, r) in enumerate(zip(prompts, results)):
        assert len(r.text) == 20 + i
        assert r.text == direct.complete([p], max_chars=20 + i, temperature=0.7, seed=100 + i)[0].text


# One long completion on each route: the torch step (fp32) and, where it runs, the native kernel
# (auto), which releases the GIL for the whole completion and is fast enough on this small model
# that it needs a far longer one to keep the ticker busy for a few ticks.
@pytest.mark.parametrize("precision,chars", [("fp32", 2000), ("auto", 200_000)])
async def test_event_loop_stays_responsive_while_generating(trained_run, precision, chars):
    store = ModelStore({"tiny": str(trained_run / "best.safetensors")}, default="tiny", precision=precision)
    assert store.get(None).uses_native(1) == (precision == "auto" and native_kernel() == "vnni")
    worker = GenerationWorker(store, batch_wait_s=0.0)
    worker.start()
    ticks = 0

    async def ticker():
        nonlocal ticks
        while True:
            await asyncio.sleep(0.01)
            ticks += 1

    tick_task = asyncio.create_task(ticker())
    try:
        result = await worker.complete("the", max_chars=chars, temperature=1.0)
    finally:
        tick_task.cancel()
        worker.stop()
    assert len(result.text) == chars
    assert ticks >= 3  # the loop kept running while the model worked in its thread


async def test_full_queue_refuses_at_once(store):
    worker = GenerationWorker(store, queue_size=2)  # not started: nothing drains the queue
    pending = [asyncio.ensure_future(worker.complete("x", max_chars=5, temperature=1.0)) for _ in range(2)]
    await asyncio.sleep(0)
    with pytest.raises(QueueFull):
        await worker.complete("y", max_chars=5, temperature=1.0)
    worker.start()
    done = await asyncio.wait_for(asyncio.gather(*pending), timeout=10)
    worker.stop()
    assert all(len(c.text) == 5 for c in done)


async def test_errors_reach_the_caller_and_the_worker_survives(store):
    worker = GenerationWorker(store)
    worker.start()
    try:
        with pytest.raises(ValueError):
            await worker.complete("x", max_chars=5, temperature=float("nan"))
        ok = await worker.complete("x", max_chars=5, temperature=0.5)
    finally:
        worker.stop()
    assert len(ok.text) == 5
    assert not any(t.name == "generation-worker" for t in threading.enumerate())


def test_worker_survives_a_requester_whose_event_loop_closed(store):
    import asyncio

    worker = GenerationWorker(store, batch_wait_s=0.2)  # the first request waits for company...
    worker.start()
    try:
        loop = asyncio.new_event_loop()
        loop.run_until_complete(_queue_and_leave(worker))
        loop.close()  # ...and its loop is gone before the result is delivered
        # The worker thread is still alive and serves the next caller.
        completion = asyncio.run(worker.complete("the quick ", max_chars=5, temperature=0.0))
        assert completion.text == "brown"
    finally:
        worker.stop()


async def _queue_and_leave(worker):
    import asyncio

    task = asyncio.ensure_future(worker.complete("the ", max_chars=5, temperature=0.0))
    await asyncio.sleep(0.01)
    task.cancel()
