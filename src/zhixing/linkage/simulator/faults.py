"""Options of a simulated unit, fault injection included.

Faults change *when* and *how often* things are said, never *what* is done: a task's answer is
decided once, in the ledger's transaction, and every fault either delays it, repeats it, sends
a broken copy first, or answers ``failed`` without applying anything. So no fault can make an
order take effect twice.

- ``latency_ms`` (± ``jitter_ms``): each task is answered that much after it arrived; in push
  mode the 202 to a push is delayed by it as well.
- ``timeout_rate``: pull mode, a fetched task is neither acknowledged nor answered for
  ``hang_seconds`` (the platform offers it again meanwhile); push mode, a push is held for
  ``hang_seconds``, then the connection is closed without an answer and nothing is stored.
- ``fail_rate``: pull mode, a task is answered ``failed`` / ``unit_error`` with nothing applied
  (final for that task id: the platform issues a new task); push mode, a push is answered
  ``503`` (unsigned, as a gateway would) and nothing is stored, so the platform pushes again.
- ``malformed_rate``: the first time an answer is sent, an invalid copy of it (``answered``
  without a payload) is posted first, on its own; the platform must reject it.
- ``duplicate_rate``: an answer or event is posted a second time after it was delivered; the
  platform must answer ``duplicate``.
"""

from __future__ import annotations

import random
import threading
from dataclasses import dataclass


@dataclass(frozen=True)
class SimulatorOptions:
    """How every simulated unit behaves (the same options for all units of a run)."""

    poll_interval: float = 0.2
    """Seconds between fetches when idle (pull mode) and between outbox checks (both)."""
    long_poll: int = 0
    """Pull mode: when idle, fetch with ``wait`` (long poll) for up to this many seconds
    instead of polling (0: off). Used only without latency and timeouts (nothing scheduled)."""
    latency_ms: int = 0
    jitter_ms: int | None = None
    """Spread of the latency, ± this many ms (default: half the latency)."""
    fail_rate: float = 0.0
    malformed_rate: float = 0.0
    duplicate_rate: float = 0.0
    timeout_rate: float = 0.0
    hang_seconds: float = 5.0
    """How long a "timed out" task or push is left unanswered."""
    fetch_limit: int = 100
    request_timeout: float = 10.0
    max_attempts: int = 3
    """Attempts per call by the SDK before the unit gives up for this round (section 9)."""
    seed: int | None = None
    """Seed of the fault dice (per unit: mixed with the unit code); None: unpredictable."""

    def __post_init__(self) -> None:
        for name in ("fail_rate", "malformed_rate", "duplicate_rate", "timeout_rate"):
            value = getattr(self, name)
            if not 0.0 <= value <= 1.0:
                raise ValueError(f"{name} is a probability, 0 to 1")
        if self.poll_interval <= 0:
            raise ValueError("poll_interval is positive")
        if not 0 <= self.long_poll <= 30:
            raise ValueError("long_poll is 0 to 30 seconds")
        if self.latency_ms < 0 or (self.jitter_ms is not None and self.jitter_ms < 0):
            raise ValueError("latency_ms and jitter_ms are not negative")
        if self.hang_seconds < 0:
            raise ValueError("hang_seconds is not negative")
        if not 1 <= self.fetch_limit <= 100:
            raise ValueError("fetch_limit is 1 to 100")
        if self.max_attempts < 1 or self.request_timeout <= 0:
            raise ValueError("max_attempts is at least 1 and request_timeout positive")


class Faults:
    """The dice of one unit. Thread-safe (the push server rolls them from its threads)."""

    def __init__(self, options: SimulatorOptions, rng: random.Random | None = None) -> None:
        self.options = options
        self._rng = rng or random.Random(options.seed)
        self._lock = threading.Lock()

    def _roll(self, rate: float) -> bool:
        if rate <= 0.0:
            return False
        with self._lock:
            return self._rng.random() < rate

    def latency(self) -> float:
        """Seconds of simulated latency for one task or one push answer."""
        base = self.options.latency_ms
        if base <= 0:
            return 0.0
        jitter = base / 2 if self.options.jitter_ms is None else self.options.jitter_ms
        with self._lock:
            spread = self._rng.uniform(-jitter, jitter)
        return max(0.0, base + spread) / 1000.0

    def fail(self) -> bool:
        return self._roll(self.options.fail_rate)

    def malformed(self) -> bool:
        return self._roll(self.options.malformed_rate)

    def duplicate(self) -> bool:
        return self._roll(self.options.duplicate_rate)

    def hang(self) -> bool:
        return self._roll(self.options.timeout_rate)
