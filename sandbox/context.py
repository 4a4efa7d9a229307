"""What every request handler shares: the sandbox (state, faults, config) and the Bot API registry."""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field

from aiohttp import web

from sandbox.faults import FaultInjector
from sandbox.params import Params, bad_request, forbidden
from sandbox.state import ChannelSpec, Chat, SandboxState, User


@dataclass
class Sandbox:
    token: str
    bot_username: str
    bot_first_name: str = "rnnbot"
    channels: list[ChannelSpec] = field(default_factory=list)
    group_title: str = "Sandbox Group"
    # Seconds after which answering a callback or inline query fails as in Telegram (None: never).
    query_timeout: float | None = None
    # getMe's supports_inline_queries, which @BotFather's /setinline turns on; off: users cannot
    # send the bot inline queries.
    inline_mode: bool = True
    faults: FaultInjector = field(default_factory=FaultInjector)
    chats_file: str | None = None  # where the chats are kept across restarts (None: in memory only)

    def __post_init__(self) -> None:
        self.pollers: dict[int, web.Request] = {}  # getUpdates requests now waiting, by id()
        self.state = self._fresh_state()

    @property
    def bot_id(self) -> int:
        return int(self.token.split(":", 1)[0])

    def _fresh_state(self) -> SandboxState:
        bot = User(id=self.bot_id, first_name=self.bot_first_name, username=self.bot_username,
                   is_bot=True, language_code=None)
        state = SandboxState(bot=bot, group_title=self.group_title)
        for channel in self.channels:
            state.add_channel(channel)
        return state

    def reset(self) -> None:
        """Forget users, messages, updates and faults; keep the bot and the configured channels."""
        old = self.state
        self.state = self._fresh_state()
        self.state.version = old.version + 1  # pages polling with the old version see a change
        self.faults.clear()
        self.faults.fired.clear()
        old.close()


SANDBOX_KEY = web.AppKey("sandbox", Sandbox)


@dataclass
class Call:
    """One Bot API call being answered."""

    sandbox: Sandbox
    params: Params
    request: web.Request
    method: str

    @property
    def state(self) -> SandboxState:
        return self.sandbox.state

    def target_chat(self, name: str = "chat_id") -> Chat:
        """The chat the bot addresses, refused the way Telegram refuses it."""
        chat_id = self.params.chat_id(name)
        state = self.state
        chat = state.resolve_chat(chat_id)
        if chat is None:
            if isinstance(chat_id, int) and chat_id in state.users:
                raise forbidden("bot can't initiate conversation with a user")
            raise bad_request("chat not found")
        if chat.type == "channel" and not chat.bot_is_admin:
            raise forbidden("bot is not a member of the channel chat")
        if chat.type == "private" and state.users.get(chat.id) and state.users[chat.id].blocked:
            raise forbidden("bot was blocked by the user")
        return chat


Handler = Callable[[Call], Awaitable[object]]
METHODS: dict[str, Handler] = {}  # lower-case method name -> handler (Telegram ignores case)


def api_method(name: str) -> Callable[[Handler], Handler]:
    def register(handler: Handler) -> Handler:
        METHODS[name.lower()] = handler
        return handler
    return register
