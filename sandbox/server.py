"""The sandbox's aiohttp application and `SandboxServer`, which runs it inside any event loop."""

from __future__ import annotations

import asyncio
import contextlib
import logging
from collections.abc import Callable, Iterable
from pathlib import Path

from aiohttp import web

from sandbox import control
from sandbox.botapi import handle_bot_api, handle_file_download
from sandbox.context import SANDBOX_KEY, Sandbox
from sandbox.faults import FaultInjector
from sandbox.guard import own_names, same_origin_only
from sandbox.media import tiny_png
from sandbox.persist import ChatKeeper
from sandbox.state import ChannelSpec, SandboxState
from sandbox.webhook import WebhookDelivery

logger = logging.getLogger(__name__)

STATIC_DIR = Path(__file__).parent / "static"
DEFAULT_TOKEN = "7000000001:sandbox-token-not-a-secret"
DEFAULT_BOT_USERNAME = "rnnbot_sandbox_bot"
DEFAULT_CHANNELS = (ChannelSpec(username="rnnbot_verses", title="rnnbot verses"),)
MAX_UPLOAD_BYTES = 20 * 1024 * 1024
SAVE_EVERY_S = 1.0  # with a chats file: how often changes are written


async def _index(request: web.Request) -> web.FileResponse:
    return web.FileResponse(STATIC_DIR / "index.html")


def favicon_ico(size: int = 32) -> bytes:
    """An .ico holding one PNG (the format browsers read since Windows Vista): a square in the page's blue."""
    png = tiny_png(size, size, (51, 144, 236))
    header = (0).to_bytes(2, "little") + (1).to_bytes(2, "little") + (1).to_bytes(2, "little")
    entry = (bytes([size, size, 0, 0]) + (1).to_bytes(2, "little") + (32).to_bytes(2, "little")
             + len(png).to_bytes(4, "little") + (6 + 16).to_bytes(4, "little"))
    return header + entry + png


FAVICON = favicon_ico()


async def _favicon(request: web.Request) -> web.Response:
    return web.Response(body=FAVICON, content_type="image/x-icon", headers={"Cache-Control": "max-age=86400"})


async def _healthz(request: web.Request) -> web.Response:
    """GET /healthz: 200 while the sandbox answers (a container healthcheck); which bot it serves."""
    sandbox = request.app[SANDBOX_KEY]
    return web.json_response({"ok": True, "bot_username": sandbox.bot_username})


def build_app(sandbox: Sandbox, host: str = "127.0.0.1") -> web.Application:
    """`host`: the address it listens on, a name the page may be opened by (see guard.py)."""
    app = web.Application(client_max_size=MAX_UPLOAD_BYTES,
                          middlewares=[same_origin_only(own_names(host)), control.control_errors])
    app[SANDBOX_KEY] = sandbox
    app.router.add_route("*", "/bot{token}/{method}", handle_bot_api)
    app.router.add_get("/file/bot{token}/{path:.+}", handle_file_download)
    app.router.add_routes(control.routes)
    app.router.add_get("/", _index)
    app.router.add_get("/favicon.ico", _favicon)
    app.router.add_get("/healthz", _healthz)
    app.router.add_static("/static/", STATIC_DIR)
    return app


class SandboxServer:
    """A local Telegram Bot API server plus the chat page, for tests, benchmarks and `rnnbot sandbox`.

    Give PTB `bot_api_base_url` (and `bot_api_base_file_url`); port 0 picks a free port.
    """

    def __init__(self, host: str = "127.0.0.1", port: int = 8080, token: str = DEFAULT_TOKEN,
                 bot_username: str = DEFAULT_BOT_USERNAME, bot_first_name: str = "rnnbot",
                 channels: Iterable[ChannelSpec | str | int | dict] = DEFAULT_CHANNELS,
                 group_title: str = "Sandbox Group", query_timeout: float | None = None,
                 access_log: bool = False, inline_mode: bool = True, chats_file: str | Path | None = None):
        """`inline_mode` False: a bot without inline mode (getMe says so; inline queries are refused).
        `chats_file`: keep users, chats and messages in this JSON file across restarts
        (sandbox/persist.py); None keeps them in memory only."""
        if ":" not in token or not token.split(":", 1)[0].isdigit():
            raise ValueError("token must look like a Telegram token: '<bot id>:<secret>'")
        self.host = host
        self.port = port
        self.sandbox = Sandbox(token=token, bot_username=bot_username, bot_first_name=bot_first_name,
                               channels=[ChannelSpec.coerce(c) for c in channels],
                               group_title=group_title, query_timeout=query_timeout, inline_mode=inline_mode,
                               chats_file=str(chats_file) if chats_file else None)
        self.keeper = ChatKeeper(chats_file) if chats_file else None
        self._saver: asyncio.Task | None = None
        self.app = build_app(self.sandbox, host)
        self._access_log = access_log
        self._runner: web.AppRunner | None = None
        self._webhooks: WebhookDelivery | None = None

    @property
    def token(self) -> str:
        return self.sandbox.token

    @property
    def bot_username(self) -> str:
        return self.sandbox.bot_username

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    @property
    def faults(self) -> FaultInjector:
        return self.sandbox.faults

    @property
    def url(self) -> str:
        return f"http://{self.host}:{self.port}"

    @property
    def bot_api_base_url(self) -> str:
        """For `ApplicationBuilder().base_url(...)`: PTB appends the token."""
        return f"{self.url}/bot"

    @property
    def bot_api_base_file_url(self) -> str:
        return f"{self.url}/file/bot"

    async def start(self) -> None:
        if self.keeper is not None:
            self.keeper.load_into(self.sandbox.state)
        # handler_cancellation: a client that drops its long poll must free the getUpdates slot.
        self._runner = web.AppRunner(self.app, handler_cancellation=True, shutdown_timeout=1.0,
                                     access_log=logging.getLogger("aiohttp.access")
                                     if self._access_log else None)
        await self._runner.setup()
        site = web.TCPSite(self._runner, self.host, self.port)
        await site.start()
        if self.port == 0:
            self.port = self._runner.addresses[0][1]
        self._webhooks = WebhookDelivery(self.sandbox)
        await self._webhooks.start()
        if self.keeper is not None:
            self._saver = asyncio.create_task(self._keep_saving())
        logger.info("Telegram sandbox listening on %s", self.url)

    async def _keep_saving(self) -> None:
        while True:
            await asyncio.sleep(SAVE_EVERY_S)
            try:
                self.keeper.save_if_changed(self.sandbox.state)
            except OSError as exc:  # a full disk must not stop the sandbox; the next change retries
                logger.warning("sandbox chats: cannot write %s: %s", self.keeper.path, exc.strerror or exc)

    async def stop(self) -> None:
        if self._runner is None:
            return
        if self._saver is not None:
            self._saver.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._saver
            self._saver = None
            try:
                self.keeper.save_if_changed(self.sandbox.state)
            except OSError as exc:
                logger.warning("sandbox chats: cannot write %s: %s", self.keeper.path, exc.strerror or exc)
        self.sandbox.state.close()
        if self._webhooks is not None:
            await self._webhooks.stop()
            self._webhooks = None
        await self._runner.cleanup()
        self._runner = None

    def reset(self) -> None:
        self.sandbox.reset()

    async def __aenter__(self) -> SandboxServer:
        await self.start()
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self.stop()


async def run_sandbox(host: str = "127.0.0.1", port: int = 8080, token: str = DEFAULT_TOKEN,
                      bot_username: str = DEFAULT_BOT_USERNAME,
                      channels: Iterable[ChannelSpec | str | int | dict] = DEFAULT_CHANNELS,
                      on_ready: Callable[[SandboxServer], object] | None = None,
                      stop: asyncio.Event | None = None, **options) -> None:
    """Serve the sandbox until `stop` is set (or the task is cancelled).

    `on_ready(server)` runs once it listens, e.g. to start the bot against
    `server.bot_api_base_url` in the same loop; an awaitable result is awaited.
    """
    server = SandboxServer(host, port, token, bot_username, channels=channels, **options)
    async with server:
        if on_ready is not None:
            result = on_ready(server)
            if asyncio.iscoroutine(result):
                await result
        await (stop or asyncio.Event()).wait()
