"""Progress bars that show on a terminal and stay silent when output is piped."""

from __future__ import annotations

import sys
from collections.abc import Iterable, Iterator
from typing import TypeVar

__all__ = ["is_interactive", "progress"]

T = TypeVar("T")


def is_interactive() -> bool:
    """True when standard error is a terminal (where a progress bar makes sense)."""
    return sys.stderr.isatty()


def progress(
    items: Iterable[T], *, total: int | None = None, description: str = "working"
) -> Iterator[T]:
    """Iterate over ``items`` with a rich progress bar on a terminal, silently otherwise.

    >>> list(progress(range(3), description="counting"))
    [0, 1, 2]
    """
    if not is_interactive():
        yield from items
        return
    from rich.progress import track

    yield from track(items, total=total, description=description, transient=True)
