"""Server-sent events: the message format, the streaming response, and the polling loop the
live pages share (an inquiry filling in, a video call's signalling).

A polling stream looks at the database in a short session of its own on the thread pool, sends
what the look found, and sleeps until the next tick or until a commit signals its channel
(PostgreSQL LISTEN/NOTIFY, :mod:`zhixing.core.signals`). It ends after ``seconds`` (the browser's
EventSource reconnects by itself, with ``Last-Event-ID``), when the client has gone, or when a
look says nothing more will come.
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Sequence
from dataclasses import dataclass

from fastapi import Request
from fastapi.responses import StreamingResponse
from starlette.concurrency import run_in_threadpool

from zhixing.core.signals import SIGNALS

# No caching anywhere on the way, and no buffering in nginx (proxy_buffering would hold the
# messages back until a buffer fills).
HEADERS = {"Cache-Control": "no-store", "X-Accel-Buffering": "no"}
HEARTBEAT_SECONDS = 15.0  # a comment line now and then keeps proxies from closing a quiet stream


def message(event: str | None, data: str, event_id: int | str | None = None) -> str:
    """One SSE message; data of several lines becomes several ``data:`` lines."""
    lines = [f"event: {event}"] if event else []
    if event_id is not None:
        lines.append(f"id: {event_id}")
    lines += [f"data: {line}" for line in (data.strip().splitlines() or [""])]
    return "\n".join(lines) + "\n\n"


def response(messages: AsyncIterator[str]) -> StreamingResponse:
    return StreamingResponse(messages, media_type="text/event-stream", headers=HEADERS)


@dataclass(frozen=True)
class Polled:
    """What one look found: messages to send, and whether the stream is over."""

    messages: Sequence[str]
    final: bool = False


@dataclass(frozen=True)
class Pace:
    """How a polling stream waits: ``tick`` seconds between looks without signals, ``idle``
    while signals flow (a signal wakes it sooner), ``settle`` after a signal so that a burst of
    commits costs one look."""

    channel: str
    tick: float
    idle: float
    settle: float = 0.0
    retry_ms: int = 3000
    seconds: float = 600.0


async def polling(request: Request, look: Callable[[], Polled], pace: Pace,
                  heartbeat: float = HEARTBEAT_SECONDS) -> AsyncIterator[str]:
    """The stream of what ``look`` (a blocking function, run on the thread pool) finds."""
    yield f"retry: {pace.retry_ms}\n\n"
    loop = asyncio.get_running_loop()
    deadline = loop.time() + pace.seconds
    quiet_since = loop.time()
    while loop.time() < deadline:
        if await request.is_disconnected():
            return
        seen = SIGNALS.mark(pace.channel)
        polled = await run_in_threadpool(look)
        for text in polled.messages:
            yield text
        if polled.final:
            return
        if polled.messages:
            quiet_since = loop.time()
        elif loop.time() - quiet_since >= heartbeat:
            quiet_since = loop.time()
            yield ": waiting\n\n"
        await SIGNALS.wait(pace.channel, seen, poll=pace.tick, idle=pace.idle,
                           settle=pace.settle)
