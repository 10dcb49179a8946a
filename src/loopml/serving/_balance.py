"""Even out keep-alive connections over workers that each own a ``SO_REUSEPORT`` socket.

The kernel hashes every new connection onto one worker's socket. With many short
connections that evens out; with a few long-lived ones (a load balancer's pool, a client
with keep-alive) the split is often uneven, and the worker holding more connections answers
more of the traffic on one core. Measured with 8 connections on 2 workers: 4/4 in four runs
of six, 5/3 and 6/2 in the others, and the 6/2 run had twice the p99 (8.0 ms against
3.2-4.9 ms).

Each worker counts the clients it answered in the last ``window`` seconds and publishes the
count in its slot of an array shared by the workers. At most every ``every`` seconds, a
worker holding more than its fair share (the total over the workers, rounded up) answers one
request with ``Connection: close``; the client reconnects and the kernel hashes the new
connection again (onto another worker with probability 1 - 1/workers), until the counts
are even. A closed connection costs its client one reconnect, which HTTP/1.1 clients do on
their own.
"""

from __future__ import annotations

import math
import time
from collections.abc import MutableSequence
from typing import Any

__all__ = ["ConnectionBalancer"]


class ConnectionBalancer:
    """Decide, per request, whether to close its connection to even out the workers' load.

    ``shared`` is shared by all workers (``multiprocessing.Array("d", 2 * workers)``): slot
    ``2 * i`` holds worker ``i``'s count of clients, ``2 * i + 1`` when it last counted
    (``time.monotonic``, one clock for all processes); a count older than ``window`` reads
    as 0 (that worker answered nobody lately). When a close does not even things out (the
    client came back, or no other worker is taking connections), the next one waits twice
    as long, up to ``max_every`` seconds.

    >>> shared = [0.0] * 4
    >>> mine, other = ConnectionBalancer(shared, 0, every=0), ConnectionBalancer(shared, 1, every=0)
    >>> [mine.should_close(("10.0.0.1", port)) for port in range(3)]  # alone: 1 of 1, 2 of 2, ...
    [False, True, True]
    >>> [other.should_close(("10.0.0.2", port)) for port in range(2)]
    [False, False]
    >>> mine.should_close(("10.0.0.1", 5)), mine.should_close(("10.0.0.1", 6))  # 2 and 2: even
    (False, False)
    """

    def __init__(
        self,
        shared: MutableSequence[float],
        index: int,
        *,
        window: float = 1.0,
        every: float = 0.1,
        max_every: float = 5.0,
    ) -> None:
        if len(shared) % 2 or not 0 <= index < len(shared) // 2:
            raise ValueError(f"worker index {index} outside the {len(shared) // 2} shared slots")
        self.shared = shared
        self.index = index
        self.workers = len(shared) // 2
        self.window = window
        self.every = every
        self.max_every = max_every
        self._seen: dict[Any, float] = {}
        self._next = 0.0
        self._wait = every

    def should_close(self, client: Any) -> bool:
        """Note a request from ``client`` (the ASGI scope's ``client``: host and port, one
        per connection); ``True`` when its connection should close after the response."""
        if client is None or self.workers < 2:
            return False
        now = time.monotonic()
        seen = self._seen
        seen[client] = now
        if now < self._next:
            return False
        cutoff = now - self.window
        for peer in [peer for peer, last in seen.items() if last < cutoff]:
            del seen[peer]
        mine = len(seen)
        self._publish(mine, now)
        total = sum(
            self.shared[2 * i]
            for i in range(self.workers)
            if i == self.index or self.shared[2 * i + 1] >= cutoff
        )
        fair = math.ceil(total / self.workers)
        if mine <= fair:
            self._wait = self.every
            self._next = now + self._wait
            return False
        del seen[client]
        self._publish(mine - 1, now)
        self._next = now + self._wait
        self._wait = min(self.max_every, max(self._wait, 0.001) * 2)
        return True

    def _publish(self, count: int, now: float) -> None:
        self.shared[2 * self.index] = float(count)
        self.shared[2 * self.index + 1] = now
