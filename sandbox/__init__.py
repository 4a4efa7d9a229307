"""A local Telegram Bot API server with a chat page, for running the real bot offline.

    async with SandboxServer(port=0) as server:
        app = ApplicationBuilder().token(server.token).base_url(server.bot_api_base_url).build()
        client = SandboxClient(server.url)

See docs/sandbox.md.
"""

from sandbox.client import SandboxClient, SandboxError
from sandbox.faults import Fault, FaultInjector
from sandbox.server import DEFAULT_BOT_USERNAME, DEFAULT_TOKEN, SandboxServer, build_app, run_sandbox
from sandbox.state import DEFAULT_USER_ID, ChannelSpec

__all__ = ["DEFAULT_BOT_USERNAME", "DEFAULT_TOKEN", "DEFAULT_USER_ID", "ChannelSpec", "Fault", "FaultInjector",
           "SandboxClient", "SandboxError", "SandboxServer", "build_app", "run_sandbox"]
