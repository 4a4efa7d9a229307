"""GET /healthz: is the database reachable and taking writes, and a model loaded? For container
healthchecks and load balancers.
GET /metrics: the process's Prometheus metrics (bot/metrics.py), when it is given them.

    server = HealthServer("0.0.0.0", 8090, service_check(db, store), metrics=Metrics())
    await server.start()          # port 0 picks a free port: read server.port
    ...
    await server.stop()

The check returns a JSON-able dict. The answer is 200 with {"ok": true, ...the dict} when the dict's
own "ok" is true or, without an "ok", when every boolean in it is true (e.g. {"database": true,
"model": true}); else 503 with the same body and "ok": false, and an "error" naming the failing part
("database: no answer within 2.5s"). The check runs in a thread, so a slow database never blocks the
bot's event loop. Its SELECT 1 gets DATABASE_TIMEOUT_S and the whole check CHECK_TIMEOUT_S, both
below the probe's 4 s and the container HEALTHCHECK's 5 s: a stopped database is reported as such
before the orchestrator gives up on the probe.

`python -m bot.health [URL]` probes the endpoint and exits 0 or 1 (the Dockerfile's HEALTHCHECK).
Without a URL it probes 127.0.0.1 on HEALTH_PORT, read as every command reads settings (environment,
then .env); HEALTH_PORT is 0 (off) by default, and the image and compose set 8090.
"""

from __future__ import annotations

import asyncio
import logging
import sys
import threading
import urllib.error
import urllib.request
from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST
from sqlalchemy import text

from db.session import unavailable_reason
from models.errors import RnnbotError

log = logging.getLogger(__name__)

DATABASE_TIMEOUT_S = 2.5  # the SELECT 1
CHECK_TIMEOUT_S = 3.5  # the whole check; the probe waits 4 s, the Dockerfile's HEALTHCHECK 5 s


class HealthServer:
    def __init__(self, host: str, port: int, check: Callable[[], dict], metrics=None):
        self.host, self.port, self.check, self.metrics = host, port, check, metrics
        self._runner: web.AppRunner | None = None

    async def start(self) -> None:
        app = web.Application()
        app.router.add_get("/healthz", self._healthz)
        if self.metrics is not None:
            app.router.add_get("/metrics", self._metrics)
        self._runner = web.AppRunner(app, access_log=None)  # probes every few seconds would flood the log
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, self.host, self.port).start()
        except OSError as exc:
            await self.stop()
            raise RnnbotError(f"cannot listen for health checks on {self.host}:{self.port} (HEALTH_HOST, "
                              f"HEALTH_PORT): {exc.strerror or exc}") from None
        self.port = self._runner.addresses[0][1]
        log.info("health endpoint on http://%s:%d/healthz%s", self.host, self.port,
                 " (metrics at /metrics)" if self.metrics is not None else "")

    async def stop(self) -> None:
        if self._runner is not None:
            await self._runner.cleanup()
            self._runner = None

    async def __aenter__(self) -> HealthServer:
        await self.start()
        return self

    async def __aexit__(self, *exc) -> None:
        await self.stop()

    async def _healthz(self, request: web.Request) -> web.Response:
        try:
            body = dict(await asyncio.wait_for(asyncio.to_thread(self.check), CHECK_TIMEOUT_S))
        except TimeoutError:
            body = {"error": f"the health check took more than {CHECK_TIMEOUT_S:g}s"}
        except Exception as exc:  # a broken check is an unhealthy service, not a crashed endpoint
            log.warning("health check failed: %s", type(exc).__name__)
            body = {"error": type(exc).__name__}
        if "error" in body:
            ok = False
        elif "ok" in body:  # the check decided itself
            ok = body["ok"] is True
        else:
            flags = [value for value in body.values() if isinstance(value, bool)]
            ok = bool(flags) and all(flags)
        body.pop("ok", None)
        return web.json_response({"ok": ok, **body}, status=200 if ok else 503)

    async def _metrics(self, request: web.Request) -> web.Response:
        body = await asyncio.to_thread(self.metrics.render)  # a gauge may ask the database
        return web.Response(body=body, headers={"Content-Type": CONTENT_TYPE_LATEST})


class DatabaseProbe:
    """`SELECT 1` on its own daemon thread, waited for at most `timeout` seconds: connecting to a
    stopped database's host can hang for a TCP timeout (minutes). Calls return None when the
    database answered, else the reason. While a probe hangs, later calls wait for that same probe
    instead of starting another thread each."""

    def __init__(self, db, timeout: float = DATABASE_TIMEOUT_S):
        self.db, self.timeout = db, timeout
        self._lock = threading.Lock()
        self._running: tuple[threading.Event, list] | None = None  # (done, [reason]) of the probe in flight

    def __call__(self) -> str | None:
        with self._lock:
            if self._running is None or self._running[0].is_set():
                self._running = (threading.Event(), [])
                threading.Thread(target=self._select_1, args=self._running, name="health-database",
                                 daemon=True).start()
            done, outcome = self._running
        if not done.wait(self.timeout):
            log.warning("health: the database gave no answer within %gs", self.timeout)
            return f"no answer within {self.timeout:g}s"
        return outcome[0]

    def _select_1(self, done: threading.Event, outcome: list) -> None:
        try:
            with self.db.engine.connect() as connection:
                connection.execute(text("SELECT 1"))
            outcome.append(None)
        except Exception as exc:
            # the driver's first line names the host or file, never the password (unavailable_reason)
            reason = unavailable_reason(exc) or type(exc).__name__
            log.warning("health: database unreachable (%s)", reason)
            outcome.append(reason)
        finally:
            done.set()


def service_check(db, store=None, worker=None, outbox=None) -> Callable[[], dict]:
    """The bot's check: database reachable, a model loaded (ModelStore), queue length (GenerationWorker),
    and with the Outbox whether writes succeed: a database can answer SELECT 1 while every write
    fails (a full disk), so "writes" is false while writes wait or the last one failed."""
    database = DatabaseProbe(db)

    def check() -> dict:
        problem = database()
        result = {"database": problem is None, "model": bool(store is not None and store.names())}
        if problem is not None:
            result["error"] = f"database: {problem}"
        if outbox is not None:
            result["writes"] = outbox.writes_ok
            result["waiting_writes"] = outbox.pending
            if outbox.last_failure is not None and not outbox.writes_ok:
                result["write_error"] = outbox.last_failure[1]
        if store is not None:
            result["models"] = store.names()
        if worker is not None:
            result["queue"] = worker.pending
        return result

    return check


def probe(url: str, timeout: float = 4.0) -> int:
    """0 when the endpoint answers 200, else 1 (with the reason on stderr)."""
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:
            return 0 if response.status == 200 else 1
    except urllib.error.HTTPError as exc:
        print(f"unhealthy: HTTP {exc.code} {exc.read().decode('utf-8', 'replace')}", file=sys.stderr)
    except OSError as exc:
        print(f"unhealthy: {exc}", file=sys.stderr)
    return 1


def default_url() -> str | None:
    """This machine's endpoint on HEALTH_PORT; None when the setting is 0 (no endpoint)."""
    from bot.settings import Settings

    port = Settings().health_port
    return f"http://127.0.0.1:{port}/healthz" if port else None


def main(argv: list[str]) -> int:
    try:
        url = argv[0] if argv else default_url()
    except ValueError as exc:  # pydantic's ValidationError: the service itself would not start
        print(f"unhealthy: bad configuration: {str(exc).splitlines()[0]}", file=sys.stderr)
        return 1
    if url is None:
        print("unhealthy: HEALTH_PORT is 0, so there is no health endpoint to probe (set HEALTH_PORT)",
              file=sys.stderr)
        return 1
    return probe(url)


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
