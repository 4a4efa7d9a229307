"""Only the sandbox's own page (and programs like PTB and SandboxClient) may drive the sandbox.

Any web page open in the same browser can send requests to http://127.0.0.1:8080; without these
checks it could act as admin 1001 through the control API. So:

- The page and its control API (/, /static/, /sandbox/) answer only requests whose Host names the
  sandbox itself: an IP address, localhost, this machine's name, or the --host it was started
  with. A page on another name that resolves to 127.0.0.1 (DNS rebinding) is refused.
- A request with an Origin header (every browser sends one on a cross-site POST) is refused unless
  it is the sandbox's own origin (the Host it was sent to). This covers the Bot API too, whose
  token is public in the sandbox; PTB and SandboxClient send no Origin.
- Control API calls that change something (POST, DELETE) must be JSON: a plain HTML form or a
  "simple" cross-site request can send text/plain or a form body, never application/json.

Everything refused gets 403.
"""

from __future__ import annotations

import ipaddress
import socket
from urllib.parse import urlsplit

from aiohttp import web

PAGE_PATHS = ("/sandbox/", "/static/")
SAFE_METHODS = ("GET", "HEAD", "OPTIONS")


def own_names(host: str) -> frozenset[str]:
    """The names a browser may use for a sandbox listening on `host` (IP addresses always pass)."""
    names = {"localhost", host.lower()}
    for name in (socket.gethostname(), socket.getfqdn()):
        names.add(name.lower())
    return frozenset(n for n in names if n)


def hostname(host_header: str) -> str:
    """'127.0.0.1:8080' -> '127.0.0.1', '[::1]:8080' -> '::1', 'Name' -> 'name'."""
    return (urlsplit(f"//{host_header}").hostname or "").lower()


def is_own_host(host_header: str, names: frozenset[str]) -> bool:
    name = hostname(host_header)
    if name in names:
        return True
    try:
        ipaddress.ip_address(name)
    except ValueError:
        return False
    return True


def refuse(reason: str) -> web.Response:
    return web.json_response({"ok": False, "error_code": 403, "error": reason, "description": f"Forbidden: {reason}"},
                             status=403)


def same_origin_only(names: frozenset[str]):
    """The aiohttp middleware enforcing the rules in the module docstring."""
    @web.middleware
    async def guard(request: web.Request, handler):
        page = request.path == "/" or request.path.startswith(PAGE_PATHS)
        host = request.headers.get("Host", "")
        if page and not is_own_host(host, names):
            return refuse(f"the sandbox answers requests to its own address, not to {hostname(host)!r}")
        origin = request.headers.get("Origin")
        if origin is not None and (urlsplit(origin).netloc.lower() != host.lower() or not is_own_host(host, names)):
            return refuse("requests from another web page are refused")
        if page and request.method not in SAFE_METHODS and request.content_type != "application/json":
            return refuse("the control API takes JSON bodies (Content-Type: application/json)")
        return await handler(request)

    return guard
