"""Webhook mode: the sandbox POSTs updates to the bot's webhook server (PTB's, on tornado), through a
round-robin load balancer to one or several replicas, as Telegram would through an HTTPS proxy."""

from __future__ import annotations

import asyncio
import itertools

import httpx
import pytest
from aiohttp import ClientSession, web

from bot.settings import Settings
from sandbox import SandboxClient
from sandbox.webhook import SECRET_HEADER
from tests.helpers import ALICE, bot_env, free_port, run_cli, start_process, stop_process

SECRET = "test-webhook-secret_0123456789"
WORDS = ["quick", "brown", "fox", "jumps", "over", "lazy"]  # one prompt per user, in the model's alphabet


class LoadBalancer:
    """POST /tg, forwarded round-robin to the replicas' webhook servers (headers and status kept).
    `down` makes it answer 502, as a balancer with no healthy replica does."""

    def __init__(self, replica_ports: list[int]):
        self.replicas = [f"http://127.0.0.1:{port}/tg" for port in replica_ports]
        self.served = dict.fromkeys(self.replicas, 0)
        self.down = False
        self._next = itertools.cycle(self.replicas)
        self._runner: web.AppRunner | None = None
        self.url = ""

    async def _forward(self, request: web.Request) -> web.Response:
        if self.down:
            return web.Response(status=502, text="no replica")
        replica = next(self._next)
        headers = {k: v for k, v in request.headers.items() if k in (SECRET_HEADER, "Content-Type")}
        async with ClientSession() as session, session.post(replica, data=await request.read(),
                                                             headers=headers) as answer:
            if answer.status == 200:
                self.served[replica] += 1
            return web.Response(status=answer.status, body=await answer.read())

    async def __aenter__(self) -> LoadBalancer:
        app = web.Application()
        app.router.add_post("/tg", self._forward)
        self._runner = web.AppRunner(app)
        await self._runner.setup()
        await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        self.url = f"http://127.0.0.1:{self._runner.addresses[0][1]}/tg"
        return self

    async def __aexit__(self, *exc_info) -> None:
        await self._runner.cleanup()


async def webhook_info(sandbox_server) -> dict:
    async with httpx.AsyncClient() as http:
        answer = await http.post(f"{sandbox_server.bot_api_base_url}{sandbox_server.token}/getWebhookInfo")
    return answer.json()["result"]


async def test_webhook_mode_answers_and_holds_updates_while_no_replica_is_up(start_bot, sandbox_server, alice):
    port = free_port()
    async with LoadBalancer([port]) as balancer:
        harness = await start_bot(webhook_url=balancer.url, webhook_port=port, webhook_secret=SECRET)
        info = await webhook_info(sandbox_server)
        assert (info["url"], info["pending_update_count"]) == (balancer.url, 0)
        assert (await alice.ask(None, "/start"))["text"].startswith("Hello, Alice!")

        # Polling is refused while the webhook is set, as Telegram refuses it.
        async with httpx.AsyncClient() as http:
            refused = (await http.post(f"{sandbox_server.bot_api_base_url}{sandbox_server.token}/getUpdates")).json()
        assert refused["error_code"] == 409 and "webhook is active" in refused["description"]

        # No replica reachable: the update waits in the sandbox (as in Telegram) and arrives later.
        balancer.down = True
        sent = await alice.send_text(None, "in the beginning ")
        for _ in range(100):
            info = await webhook_info(sandbox_server)
            if "last_error_message" in info:
                break
            await asyncio.sleep(0.05)
        assert info["pending_update_count"] == 1 and "502" in info["last_error_message"]
        balancer.down = False
        reply = await alice.wait_for_bot_reply(ALICE, after=sent, timeout=20)
        assert reply["text"].startswith("in the beginning ")
        assert (await webhook_info(sandbox_server))["pending_update_count"] == 0
        assert [p.text for p in harness.prompts(ALICE)] == ["in the beginning "]


async def test_the_webhook_refuses_updates_without_the_secret(start_bot, sandbox_server, alice):
    port = free_port()
    harness = await start_bot(webhook_url=f"http://127.0.0.1:{port}/tg", webhook_port=port, webhook_secret=SECRET)
    forged = {"update_id": 999, "message": {"message_id": 1, "date": 0, "text": "forged prompt",
                                            "chat": {"id": ALICE, "type": "private"},
                                            "from": {"id": ALICE, "is_bot": False, "first_name": "Mallory"}}}
    async with httpx.AsyncClient() as http:
        for headers in ({}, {SECRET_HEADER: "wrong"}):
            answer = await http.post(f"http://127.0.0.1:{port}/tg", json=forged, headers=headers)
            assert answer.status_code == 403
    assert (await alice.ask(None, "/start"))["text"].startswith("Hello, Alice!")  # the real ones still arrive
    assert harness.prompts(ALICE) == []
    assert not [m for m in await alice.messages(ALICE) if "forged prompt" in m.get("text", "")]


async def test_the_sandbox_wants_https_except_on_loopback(sandbox_server):
    async with httpx.AsyncClient() as http:
        def set_webhook(**params):
            return http.post(f"{sandbox_server.bot_api_base_url}{sandbox_server.token}/setWebhook", json=params)

        assert (await set_webhook(url="http://bot.example.com/tg")).json()["description"] == (
            "Bad Request: bad webhook: An HTTPS URL must be provided for webhook")
        assert (await set_webhook(url="https://bot.example.com/tg", secret_token="not allowed!")).json()[
            "description"] == "Bad Request: secret token contains unallowed characters"
        assert (await set_webhook(url="http://127.0.0.1:9/tg")).json()["ok"] is True


def test_the_webhook_path_is_the_urls_unless_set():
    settings = Settings(_env_file=None, webhook_url="https://bot.example.com/hooks/tg/", webhook_secret=SECRET)
    assert settings.webhook_url_path == "hooks/tg"
    assert settings.model_copy(update={"webhook_path": "/in"}).webhook_url_path == "in"
    assert Settings(_env_file=None).webhook_url == ""  # polling by default


def test_webhook_configuration_errors_are_one_line(tmp_path, trained_run):
    env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN="123:abc", MODEL_PATH=str(trained_run),
                  WEBHOOK_URL="https://bot.example.com/tg")
    result = run_cli("serve", cwd=tmp_path, env=env)
    assert (result.returncode, result.stderr.strip()) == (
        2, "rnnbot: error: bad configuration: WEBHOOK_SECRET must be set with WEBHOOK_URL: without it anyone who "
           "finds the URL can send the bot fake updates (generate one: openssl rand -hex 32)")
    result = run_cli("serve", cwd=tmp_path, env={**env, "WEBHOOK_URL": "bot.example.com", "WEBHOOK_SECRET": "x"})
    assert result.returncode == 2
    assert result.stderr.strip() == ("rnnbot: error: bad configuration: WEBHOOK_URL: WEBHOOK_URL must be an "
                                     "https:// URL, e.g. https://bot.example.com/telegram")


@pytest.mark.slow
async def test_two_serve_replicas_behind_a_load_balancer_share_the_users(sandbox_server, tmp_path, trained_run):
    ports = [free_port(), free_port()]
    async with LoadBalancer(ports) as balancer:
        replicas = []
        for verbosity, port in zip((["-v"], []), ports):  # -v: not even DEBUG logs show the secret
            env = bot_env(tmp_path, TELEGRAM_BOT_TOKEN=sandbox_server.token,
                          TELEGRAM_API_BASE_URL=sandbox_server.bot_api_base_url,
                          MODEL_PATH=str(trained_run), WEBHOOK_URL=balancer.url, WEBHOOK_PORT=str(port),
                          WEBHOOK_SECRET=SECRET)
            replicas.append(await start_process(*verbosity, "serve", env=env, cwd=tmp_path))
        try:
            async with SandboxClient(sandbox_server.url) as client:
                # Both up before users write: until then the balancer would send some to a closed port.
                for port in ports:
                    await wait_listening(port, timeout=90)
                users = [{"id": 2000 + i, "first_name": f"User{i}"} for i in range(len(WORDS))]
                replies = await asyncio.gather(*(client.ask(user, f"the {word} ", timeout=60)
                                                 for word, user in zip(WORDS, users)))
                await asyncio.sleep(1)  # time for a duplicate answer, were an update handled twice
                answers = [[m for m in await client.messages(user["id"]) if m["from"]["is_bot"]] for user in users]
        finally:
            stopped = [await stop_process(process) for process in replicas]
    assert [r["text"].split()[:2] for r in replies] == [["the", word] for word in WORDS]
    # Each update went to exactly one replica: one answer per user.
    assert [len(a) for a in answers] == [1] * 6, [[m["text"] for m in a] for a in answers]
    assert all(count >= 2 for count in balancer.served.values()), balancer.served
    assert [rc for rc, _, _ in stopped] == [0, 0], stopped
    assert all(SECRET not in out + err and sandbox_server.token.split(":")[1] not in out + err for _, out,
               err in stopped)
    assert (await webhook_info(sandbox_server))["url"] == balancer.url  # a stopping replica leaves it to the others


async def wait_listening(port: int, timeout: float) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while True:
        try:
            _, writer = await asyncio.open_connection("127.0.0.1", port)
            writer.close()
            await writer.wait_closed()
            return
        except OSError:
            if asyncio.get_running_loop().time() > deadline:
                raise TimeoutError(f"nothing listens on port {port} after {timeout}s") from None
            await asyncio.sleep(0.2)
