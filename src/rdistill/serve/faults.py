"""Fault injection for `rdistill serve`: an ASGI middleware that breaks a share of chat completions.

It sits in front of the whole app, so the faults reach the client exactly as a failing server
or proxy would send them: 429 with Retry-After, 500, answers held past the client's timeout,
bodies that are not JSON, connections closed halfway through an answer, and a key revoked
mid-run. `GET /rdistill/faults` reports what it did (attempts seen, faults injected by kind,
completions), so that a client's retry count can be checked against the faults it met rather
than against how fast the machine is.
"""

from __future__ import annotations

import asyncio
import json
import math
import random
from collections.abc import Awaitable, Callable
from typing import Any

from rdistill.config import FaultOptions

Scope = dict[str, Any]
Receive = Callable[[], Awaitable[dict[str, Any]]]
Send = Callable[[dict[str, Any]], Awaitable[None]]

STATS_PATH = "/rdistill/faults"
BROKEN_JSON = (
    b'{"id": "chatcmpl-broken", "object": "chat.completion", "choices": [{"index": 0, "message": {"role": "assist'
)


async def send_json(
    send: Send, status: int, payload: dict[str, Any], headers: list[tuple[bytes, bytes]] | None = None
) -> None:
    """A complete JSON answer."""
    body = json.dumps(payload).encode()
    start_headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())] + (
        headers or []
    )
    await send({"type": "http.response.start", "status": status, "headers": start_headers})
    await send({"type": "http.response.body", "body": body})


def error_payload(message: str, kind: str) -> dict[str, Any]:
    """An error body in the OpenAI format."""
    return {"error": {"message": message, "type": kind, "code": kind}}


class FaultInjector:
    """Wraps an ASGI app; draws one fault (or none) per chat completion from the configured shares."""

    def __init__(self, app: Callable, faults: FaultOptions) -> None:
        self.app = app
        self.faults = faults
        self.rng = random.Random(faults.seed)
        self.completions = 0
        self.attempts = 0
        self.injected: dict[str, int] = {}

    def draw(self) -> str | None:
        """The fault for the next chat completion, by cumulative shares."""
        point, cumulative = self.rng.random(), 0.0
        for name in ("rate_limit", "server_error", "hang", "malformed", "disconnect"):
            cumulative += getattr(self.faults, name)
            if point < cumulative:
                return name
        return None

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            return await self.app(scope, receive, send)
        if scope["path"] == STATS_PATH:
            return await send_json(send, 200, self.stats())
        if self.faults.revoke_after is not None and self.completions >= self.faults.revoke_after:
            return await send_json(send, 401, error_payload("this API key was revoked", "invalid_api_key"))
        if not scope["path"].endswith("/chat/completions"):
            return await self.app(scope, receive, send)
        self.attempts += 1
        fault = self.draw()
        if fault is not None:
            self.injected[fault] = self.injected.get(fault, 0) + 1
        if fault == "hang":
            await asyncio.sleep(self.faults.hang_s)
        elif fault is not None:
            return await self.break_answer(fault, send)
        await self.app(scope, receive, self.counting(send))

    def stats(self) -> dict[str, Any]:
        """What the injector has done so far: chat completion attempts, faults by kind, completions."""
        return {"attempts": self.attempts, "injected": dict(self.injected), "completions": self.completions}

    def counting(self, send: Send) -> Send:
        """`send`, counting successful completions (for `revoke_after`)."""

        async def wrapped(message: dict[str, Any]) -> None:
            if message["type"] == "http.response.start" and message["status"] == 200:
                self.completions += 1
            await send(message)

        return wrapped

    async def break_answer(self, fault: str, send: Send) -> None:
        """Send the faulty answer in place of the app's."""
        if fault == "rate_limit":
            wait = self.faults.retry_after_s
            headers = [
                (b"retry-after", str(math.ceil(wait)).encode()),
                (b"retry-after-ms", str(int(wait * 1000)).encode()),
            ]
            await send_json(send, 429, error_payload("rate limited", "rate_limit_exceeded"), headers)
        elif fault == "server_error":
            await send_json(send, 500, error_payload("injected server error", "server_error"))
        elif fault == "malformed":
            headers = [(b"content-type", b"application/json"), (b"content-length", str(len(BROKEN_JSON)).encode())]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": BROKEN_JSON})
        elif fault == "disconnect":
            # Promise a longer body than we send and return: uvicorn then closes the connection.
            headers = [(b"content-type", b"application/json"), (b"content-length", b"4096")]
            await send({"type": "http.response.start", "status": 200, "headers": headers})
            await send({"type": "http.response.body", "body": b'{"id": "chatcmpl-cut', "more_body": True})
