"""The shared SSE pieces: the message format and the polling loop of the live pages."""

from __future__ import annotations

import asyncio
from typing import Any

from zhixing.web import sse


def test_a_message_of_several_lines() -> None:
    assert sse.message("row", "<tr>\n<td>1</td>\n</tr>\n", 7) == (
        "event: row\nid: 7\ndata: <tr>\ndata: <td>1</td>\ndata: </tr>\n\n")
    assert sse.message(None, "") == "data: \n\n"


class _Request:
    def __init__(self) -> None:
        self.gone = False

    async def is_disconnected(self) -> bool:
        return self.gone


def _collect(looks: list[sse.Polled], pace: sse.Pace, heartbeat: float = 15.0,
             request: Any = None) -> list[str]:
    remaining = list(looks)

    def look() -> sse.Polled:
        return remaining.pop(0) if remaining else sse.Polled([])

    async def run() -> list[str]:
        client: Any = request or _Request()  # what the loop asks of a request: is it gone
        return [m async for m in sse.polling(client, look, pace, heartbeat)]

    return asyncio.run(run())


PACE = sse.Pace(channel="test", tick=0.01, idle=0.01, seconds=5.0)


def test_the_stream_ends_when_a_look_says_it_is_over() -> None:
    out = _collect([sse.Polled(["a\n\n"]), sse.Polled([]), sse.Polled(["b\n\n"], final=True)],
                   PACE)
    assert out == ["retry: 3000\n\n", "a\n\n", "b\n\n"]


def test_a_quiet_stream_sends_heartbeats_and_ends_on_time() -> None:
    out = _collect([], sse.Pace(channel="test", tick=0.01, idle=0.01, seconds=0.2),
                   heartbeat=0.05)
    assert out[0] == "retry: 3000\n\n"
    assert 2 <= out.count(": waiting\n\n") == len(out) - 1


def test_the_stream_stops_when_the_client_has_gone() -> None:
    request = _Request()
    request.gone = True
    assert _collect([sse.Polled(["a\n\n"])], PACE, request=request) == ["retry: 3000\n\n"]
