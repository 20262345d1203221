"""Limits as pure ASGI middleware, each answering before the app does any work:

- BodyLimit: 413 before the body is buffered (a declared Content-Length over the limit is
  refused at once; a chunked body is counted as it streams and cut off when it passes it);
- BodyFirst: an API request's body is read whole, within a time limit (408 past it), before
  the request is admitted: a client that sends headers and trickles its body holds no slot;
- JsonBodyLimits: a JSON body's size and its count of objects and arrays bounded before it is
  parsed (parsing and validating run in the event loop);
- InFlightLimit: 503 + Retry-After past a number of API requests in progress;
- RequestDeadline: 504 when a whole API request outlives its deadline;
- UnversionedAliases: /sample -> /v1/sample, and so on.
"""

from __future__ import annotations

import asyncio
import json

from starlette.types import ASGIApp, Message, Receive, Scope, Send


async def send_problem(
    send: Send, status: int, title: str, detail: str, headers: list[tuple[bytes, bytes]] = ()
) -> None:
    """An RFC 9457 problem document as a complete ASGI response."""
    body = json.dumps({"type": "about:blank", "title": title, "status": status, "detail": detail})
    data = body.encode()
    await send(
        {
            "type": "http.response.start",
            "status": status,
            "headers": [
                (b"content-type", b"application/problem+json"),
                (b"content-length", str(len(data)).encode()),
                *headers,
            ],
        }
    )
    await send({"type": "http.response.body", "body": data})


class BodyLimit:
    def __init__(self, app: ASGIApp, *, max_bytes: int) -> None:
        self.app = app
        self.max_bytes = max_bytes

    async def _reject(self, send: Send) -> None:
        detail = f"the request body is larger than {self.max_bytes} bytes"
        await send_problem(send, 413, "Payload too large", detail)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        headers = dict(scope.get("headers", []))
        length = headers.get(b"content-length")
        if length is not None and length.isdigit() and int(length) > self.max_bytes:
            await self._reject(send)
            return
        seen = 0
        too_large = False

        async def limited_receive() -> Message:
            nonlocal seen, too_large
            if too_large:
                return {"type": "http.disconnect"}
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.max_bytes:
                    too_large = True  # the app sees a disconnect; we answer 413 instead
                    return {"type": "http.disconnect"}
            return message

        async def guarded_send(message: Message) -> None:
            if not too_large:
                await send(message)

        try:
            await self.app(scope, limited_receive, guarded_send)
        except Exception:
            if not too_large:
                raise
        if too_large:
            await self._reject(send)


class BodyFirst:
    """Reads an API request's whole body before passing the request on, within ``timeout_s``
    (then 408, and the connection closes). What runs inside — admission (InFlightLimit), the
    deadline, the handler — starts with the body in hand, so that 64 clients sending headers
    and then a few bytes can no longer hold every in-flight slot. BodyLimit, outside, bounds
    how much one request buffers."""

    def __init__(self, app: ASGIApp, *, timeout_s: float, prefix: str = "/v1/") -> None:
        self.app = app
        self.timeout_s = timeout_s
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        try:
            async with asyncio.timeout(self.timeout_s):
                body = await _read_body(receive)
        except TimeoutError:
            detail = (
                f"the request body did not arrive within {self.timeout_s:g} s "
                "(GAN3D_BODY_TIMEOUT_S); send it at once"
            )
            await send_problem(send, 408, "Request timeout", detail, [(b"connection", b"close")])
            return
        await self.app(scope, _replaying(body, receive), send)


async def _read_body(receive: Receive) -> bytes | None:
    """The whole request body, or None when the client went away (or BodyLimit cut it off,
    and answers) before it arrived."""
    chunks = []
    while True:
        message = await receive()
        if message["type"] == "http.disconnect":
            return None
        chunks.append(message.get("body", b""))
        if not message.get("more_body", False):
            return b"".join(chunks)


def _replaying(body: bytes | None, receive: Receive) -> Receive:
    """A receive that hands ``body`` over in one message (or, for None, the disconnect), then
    waits on ``receive`` (for the disconnect)."""
    replayed = False

    async def replay() -> Message:
        nonlocal replayed
        if replayed:
            return await receive()
        replayed = True
        if body is None:
            return {"type": "http.disconnect"}
        return {"type": "http.request", "body": body, "more_body": False}

    return replay


class JsonBodyLimits:
    """A JSON API body over ``max_bytes`` is 413; one with more than ``max_containers`` objects
    and arrays is 422 — both before it is parsed. The JSON parser and validation run in the
    event loop, where 6 MB of nested references took 0.16 s just to parse and 3.5 million
    strings 49 s to refuse. A request at the latent limit (256 latents of 200 numbers) is about
    1.1 MB in some 800 containers. Brackets inside strings are counted too (a cheap count of
    the bytes, not a parse): a request can only be refused early by them, never admitted."""

    def __init__(
        self, app: ASGIApp, *, max_bytes: int, max_containers: int, prefix: str = "/v1/"
    ) -> None:
        self.app = app
        self.max_bytes = max_bytes
        self.max_containers = max_containers
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        headers = dict(scope.get("headers", [])) if scope["type"] == "http" else {}
        kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
        if not (
            scope["type"] == "http"
            and scope["path"].startswith(self.prefix)
            and (kind == b"application/json" or kind.endswith(b"+json"))
        ):
            await self.app(scope, receive, send)
            return
        body = await _read_body(receive)  # BodyFirst, outside, hands it over in one message
        if body is None:
            await self.app(scope, _replaying(None, receive), send)
            return
        if len(body) > self.max_bytes:
            detail = (
                f"the JSON body is {len(body)} bytes; at most {self.max_bytes} "
                "(GAN3D_MAX_JSON_BYTES): ask for fewer latents per request"
            )
            await send_problem(send, 413, "Payload too large", detail)
            return
        containers = body.count(b"{") + body.count(b"[")
        if containers > self.max_containers:
            detail = (
                f"the JSON body has {containers} objects and arrays; at most "
                f"{self.max_containers}: split the request"
            )
            await send_problem(send, 422, "Invalid request", detail)
            return
        await self.app(scope, _replaying(body, receive), send)


class UnversionedAliases:
    """The design card's unversioned paths (POST /sample, /reconstruct, ...) as aliases of
    /v1/...: the path is rewritten before anything else sees it, so behaviour, limits, auth
    and metrics are those of the /v1 endpoint."""

    def __init__(self, app: ASGIApp, *, first_segments: set[str]) -> None:
        self.app = app
        self.first = first_segments  # e.g. {"sample", "shapes", "model"}

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] == "http":
            path = scope["path"]
            if path.split("/", 2)[1] in self.first:
                scope = {**scope, "path": "/v1" + path, "raw_path": b"/v1" + path.encode()}
        await self.app(scope, receive, send)


class InFlightLimit:
    """Load shedding before any work: past ``max_in_flight`` API requests being served, a new
    one waits up to ``wait_s`` for a slot (idle: nothing validated; BodyFirst, outside, has
    read the body), then is
    answered 503 + Retry-After. Health, metrics and static files are never shed. (Refusing only
    at the model queue let overload spend the CPU on parsing requests that were then refused;
    refusing at once let clients that retry at once spend it on a storm of 503s: at 10x capacity
    completed throughput fell to about half. Waiting costs a sleeping coroutine.)"""

    def __init__(
        self, app: ASGIApp, *, max_in_flight: int, wait_s: float = 0.0, prefix: str = "/v1/"
    ) -> None:
        self.app = app
        self.max = max_in_flight
        self.wait_s = wait_s
        self.prefix = prefix
        self.in_flight = 0
        self.slots = asyncio.Semaphore(max_in_flight)

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        if not await self._admit():
            detail = f"{self.in_flight} requests in progress; retry shortly"
            await send_problem(send, 503, "Overloaded", detail, [(b"retry-after", b"1")])
            return
        self.in_flight += 1
        try:
            await self.app(scope, receive, send)
        finally:
            self.in_flight -= 1
            self.slots.release()

    async def _admit(self) -> bool:
        if not self.slots.locked():
            await self.slots.acquire()  # a free slot: no wait
            return True
        if self.wait_s <= 0:
            return False
        try:
            await asyncio.wait_for(self.slots.acquire(), self.wait_s)
        except TimeoutError:
            return False
        return True


class RequestDeadline:
    """The whole API request once its body has arrived (BodyFirst) — queueing, inference,
    meshing, encoding — within ``seconds``: past it, a response not yet started is answered
    504 and the handler is cancelled. (The engine's own deadline covers queue + inference
    only.) Meshing already running in a worker thread finishes there, but nobody waits for it;
    the work cap bounds it."""

    def __init__(self, app: ASGIApp, *, seconds: float, prefix: str = "/v1/") -> None:
        self.app = app
        self.seconds = seconds
        self.prefix = prefix

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope["path"].startswith(self.prefix):
            await self.app(scope, receive, send)
            return
        started = False

        async def guarded_send(message: Message) -> None:
            nonlocal started
            if message["type"] == "http.response.start":
                started = True
            await send(message)

        try:
            await asyncio.wait_for(self.app(scope, receive, guarded_send), self.seconds)
        except TimeoutError:
            if started:
                raise
            detail = (
                f"the request took longer than {self.seconds:g} s; ask for less work (fewer "
                "shapes, lower upsample) or retry"
            )
            await send_problem(send, 504, "Deadline exceeded", detail)
