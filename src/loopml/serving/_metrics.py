"""Prometheus metrics in the text exposition format, with no client library.

Counters and one latency histogram per model version; rendering is a few string joins,
so ``/metrics`` costs nothing on the request path.
"""

from __future__ import annotations

import bisect
import threading
from collections import defaultdict

__all__ = ["ServiceMetrics"]

_BUCKETS_MS = (0.25, 0.5, 1.0, 2.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 1000.0)


class ServiceMetrics:
    """Requests, errors, fallbacks, validation failures and latency per model version.

    >>> m = ServiceMetrics()
    >>> m.observe("v1", 0.8)
    >>> m.count("fallbacks", version="v1")
    >>> 'loopml_request_latency_ms_bucket{version="v1",le="1"} 1' in m.render()
    True
    """

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counters: dict[tuple[str, tuple[tuple[str, str], ...]], float] = defaultdict(float)
        self._histograms: dict[str, list[int]] = {}
        self._sums: dict[str, float] = defaultdict(float)

    def count(self, name: str, value: float = 1.0, **labels: str) -> None:
        """Add ``value`` to counter ``loopml_<name>_total`` with these labels."""
        key = (name, tuple(sorted(labels.items())))
        with self._lock:
            self._counters[key] += value

    def observe(self, version: str, latency_ms: float) -> None:
        """Record one request's latency for a model version."""
        index = bisect.bisect_left(_BUCKETS_MS, latency_ms)
        with self._lock:
            counts = self._histograms.get(version)
            if counts is None:
                counts = self._histograms[version] = [0] * (len(_BUCKETS_MS) + 1)
            counts[index] += 1
            self._sums[version] += latency_ms

    def value(self, name: str, **labels: str) -> float:
        """The current value of a counter (0 when never counted)."""
        return self._counters.get((name, tuple(sorted(labels.items()))), 0.0)

    def render(self) -> str:
        """The text exposition format that Prometheus scrapes."""
        lines = []
        with self._lock:
            names = sorted({name for name, _ in self._counters})
            for name in names:
                lines.append(f"# TYPE loopml_{name}_total counter")
                for (counter, labels), value in sorted(self._counters.items()):
                    if counter == name:
                        lines.append(f"loopml_{name}_total{_labels(labels)} {value:g}")
            lines.append("# TYPE loopml_request_latency_ms histogram")
            for version, counts in sorted(self._histograms.items()):
                running = 0
                for bound, count in zip((*_BUCKETS_MS, float("inf")), counts, strict=True):
                    running += count
                    le = "+Inf" if bound == float("inf") else f"{bound:g}"
                    bucket = f'version="{version}",le="{le}"'
                    lines.append(f"loopml_request_latency_ms_bucket{{{bucket}}} {running}")
                lines.append(
                    f'loopml_request_latency_ms_sum{{version="{version}"}} {self._sums[version]:g}'
                )
                lines.append(f'loopml_request_latency_ms_count{{version="{version}"}} {running}')
        return "\n".join(lines) + "\n"


def _labels(labels: tuple[tuple[str, str], ...]) -> str:
    if not labels:
        return ""
    inner = ",".join(f'{k}="{_escape(v)}"' for k, v in labels)
    return "{" + inner + "}"


def _escape(value: str) -> str:
    return value.replace("\\", "\\\\").replace('"', '\\"').replace("\n", "\\n")
