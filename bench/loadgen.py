"""A small open-loop HTTP/1.1 load generator for the benchmarks (no browser, no httpx).

Why not httpx: its async client costs about a millisecond of CPU a request, so at 500
requests/s the client alone takes most of a core of the 2-core machine the targets are set for,
and its queueing shows up as server latency. This generator sends pre-encoded requests over
keep-alive connections with asyncio streams (uvloop when installed) and parses only the status
line and ``Content-Length``: tens of microseconds a request.

Open loop: request *i* is due at ``start + i / rate`` whatever happened before, and its latency
is measured from that moment, so a server that falls behind is charged for the queue it builds
(no coordinated omission). Requests wait for a free connection in a shared queue; with enough
connections the client never throttles the rate.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass, field


@dataclass
class Result:
    latencies: list[float] = field(default_factory=list)  # seconds, from the scheduled time
    statuses: dict[int, int] = field(default_factory=dict)
    elapsed: float = 0.0
    sent: int = 0

    @property
    def achieved_rate(self) -> float:
        return self.sent / self.elapsed if self.elapsed else 0.0

    @property
    def errors(self) -> int:
        return sum(n for status, n in self.statuses.items() if status >= 400 or status == 0)


def encode_post(path: str, host: str, headers: dict[str, str], body: bytes) -> bytes:
    lines = [f"POST {path} HTTP/1.1", f"Host: {host}", "Content-Type: application/json",
             f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(lines) + "\r\n\r\n").encode() + body


async def _read_response(reader: asyncio.StreamReader) -> int:
    head = await reader.readuntil(b"\r\n\r\n")
    status = int(head[9:12])
    length = 0
    for line in head.split(b"\r\n")[1:]:
        name, _, value = line.partition(b":")
        if name.strip().lower() == b"content-length":
            length = int(value)
            break
    if length:
        await reader.readexactly(length)
    return status


async def _open_loop(host: str, ports: Sequence[int], requests: Sequence[bytes], rate: float,
                     connections: int) -> Result:
    result = Result()
    queue: asyncio.Queue[tuple[int, float] | None] = asyncio.Queue()
    # Several ports: several server processes behind an imagined balancer, connections spread.
    streams = [await asyncio.open_connection(host, ports[k % len(ports)])
               for k in range(connections)]
    # Warm every connection once (the server's first request on a connection costs more).
    for i, (reader, writer) in enumerate(streams):
        writer.write(requests[i % len(requests)])
        await writer.drain()
        await _read_response(reader)

    async def worker(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        while (item := await queue.get()) is not None:
            i, due = item
            writer.write(requests[i % len(requests)])
            await writer.drain()
            try:
                status = await _read_response(reader)
            except (asyncio.IncompleteReadError, ConnectionError):
                status = 0
            result.latencies.append(time.perf_counter() - due)
            result.statuses[status] = result.statuses.get(status, 0) + 1

    workers = [asyncio.create_task(worker(r, w)) for r, w in streams]
    count = len(requests)
    start = time.perf_counter()
    for i in range(count):
        due = start + i / rate
        delay = due - time.perf_counter()
        if delay > 0:
            await asyncio.sleep(delay)
        queue.put_nowait((i, due))
    for _ in workers:
        queue.put_nowait(None)
    await asyncio.gather(*workers)
    result.elapsed = time.perf_counter() - start
    result.sent = count
    for _, writer in streams:
        writer.close()
    return result


def open_loop(host: str, ports: int | Sequence[int], requests: Sequence[bytes], rate: float,
              connections: int = 32) -> Result:
    """Send every request once, at ``rate`` per second; see the module doc."""
    spread = [ports] if isinstance(ports, int) else list(ports)
    try:
        import uvloop
    except ImportError:  # pragma: no cover (uvicorn[standard] brings uvloop)
        return asyncio.run(_open_loop(host, spread, requests, rate, connections))
    return uvloop.run(_open_loop(host, spread, requests, rate, connections))
