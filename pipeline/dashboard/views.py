"""The dashboard's HTTP side, on Faust's own (aiohttp) web server.

- `GET /dashboard`: the page (one HTML file, inline JS, no CDN: it works offline and loads nothing
  from third parties).
- `GET /dashboard/events`: server-sent events; a `snapshot` first, then `event`, `point`,
  `summary`, `alert` and `stats` updates as they happen (EventSource reconnects by itself).
- `GET /dashboard/state`: the snapshot as JSON (scripts, debugging).

With a token configured every path requires `Authorization: Bearer <token>`, or `?token=<token>`:
a browser's EventSource cannot send headers, so the page passes the token it was opened with on
to its stream URL. (Faust's aiohttp runner has no access log, so the query string is not logged.)
"""

from __future__ import annotations

import asyncio
import hmac
import secrets
from pathlib import Path
from typing import Any

import faust
import orjson
from aiohttp import web
from faust.web import Request, Response, View

from pipeline.dashboard.broadcast import Broadcaster
from pipeline.dashboard.hub import Hub

PAGE_PATH = Path(__file__).with_name("page.html")
KEEPALIVE_S = 15.0  # an SSE comment this often keeps proxies from closing an idle stream


def authorized(expected: str | None, authorization: str | None, query_token: str | None) -> bool:
    """True if no token is configured, or the request presents it (header first, then ?token=)."""
    if not expected:
        return True
    presented: str | None = None
    if authorization:
        scheme, _, value = authorization.partition(" ")
        if scheme.lower() == "bearer":
            presented = value.strip()
    if presented is None:
        presented = query_token
    if not presented:
        return False
    # Constant time: the comparison must not tell an attacker how many leading characters were right.
    return hmac.compare_digest(presented.encode(), expected.encode())


def sse_message(event: str, data: Any) -> bytes:
    # orjson never emits raw newlines, so one `data:` line always holds the whole JSON document.
    return b"event: " + event.encode() + b"\ndata: " + orjson.dumps(data) + b"\n\n"


def page_html(nonce: str) -> bytes:
    return PAGE_PATH.read_bytes().replace(b"{{NONCE}}", nonce.encode())


def register_views(app: faust.App, hub: Hub, broadcaster: Broadcaster, token: str | None) -> None:
    def denied(request: Request) -> web.Response | None:
        if authorized(token, request.headers.get("Authorization"), request.query.get("token")):
            return None
        return web.json_response({"error": "unauthorized: send Authorization: Bearer <token> or ?token="},
                                 status=401, headers={"WWW-Authenticate": 'Bearer realm="streamnlp dashboard"'})

    @app.page("/dashboard")
    async def dashboard_page(self: View, request: Request) -> Response:
        refusal = denied(request)
        if refusal is not None:
            return refusal  # type: ignore[return-value]
        nonce = secrets.token_urlsafe(16)
        return web.Response(body=page_html(nonce), headers={  # type: ignore[return-value]
            "Content-Type": "text/html; charset=utf-8",
            # Only the page's own inline script runs; it talks only to this server.
            "Content-Security-Policy": (f"default-src 'none'; script-src 'nonce-{nonce}'; style-src 'unsafe-inline'; "
                                        "connect-src 'self'; img-src 'self' data:; base-uri 'none'; frame-ancestors 'none'"),
            "Referrer-Policy": "no-referrer",  # the URL may carry ?token=
            "X-Content-Type-Options": "nosniff",
            "Cache-Control": "no-store",
        })

    @app.page("/dashboard/state")
    async def dashboard_state(self: View, request: Request) -> Response:
        refusal = denied(request)
        if refusal is not None:
            return refusal  # type: ignore[return-value]
        return self.json(hub.snapshot(), headers={"Cache-Control": "no-store"})

    @app.page("/dashboard/events")
    async def dashboard_events(self: View, request: Request) -> Response:
        refusal = denied(request)
        if refusal is not None:
            return refusal  # type: ignore[return-value]
        response = web.StreamResponse(headers={
            "Content-Type": "text/event-stream", "Cache-Control": "no-store", "X-Accel-Buffering": "no",
        })
        await response.prepare(request)  # type: ignore[arg-type]
        # Snapshot and subscription in one step of the event loop: no update can fall between them.
        snapshot = hub.snapshot()
        subscription = broadcaster.subscribe()
        try:
            await response.write(sse_message("snapshot", snapshot))
            while True:
                try:
                    batch = await asyncio.wait_for(subscription.next(), KEEPALIVE_S)
                except TimeoutError:
                    await response.write(b": keepalive\n\n")
                    continue
                if batch is None:  # too slow, or the worker is stopping
                    break
                await response.write(b"".join(sse_message(u["type"], u["data"]) for u in batch))
        except ConnectionError:
            pass  # the page went away
        finally:
            broadcaster.unsubscribe(subscription)
        return response  # type: ignore[return-value]
