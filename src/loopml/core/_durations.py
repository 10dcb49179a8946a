"""Durations such as ``"30m"`` or ``"7d"``, parsed in one place."""

from __future__ import annotations

import re
from datetime import timedelta

from loopml.core._exceptions import ConfigError

__all__ = ["format_duration", "parse_duration"]

_UNITS = {
    "ms": timedelta(milliseconds=1),
    "s": timedelta(seconds=1),
    "m": timedelta(minutes=1),
    "h": timedelta(hours=1),
    "d": timedelta(days=1),
    "w": timedelta(weeks=1),
}
_PATTERN = re.compile(r"^\s*(\d+(?:\.\d+)?)\s*(ms|s|m|h|d|w)\s*$")


def parse_duration(value: str | timedelta | int | float, *, name: str = "duration") -> timedelta:
    """Parse ``"90s"``, ``"30m"``, ``"1h"``, ``"7d"`` or ``"2w"`` into a ``timedelta``.

    A number is read as seconds; a ``timedelta`` is returned as it is.

    Examples
    --------
    >>> parse_duration("7d")
    datetime.timedelta(days=7)
    >>> parse_duration("1.5h")
    datetime.timedelta(seconds=5400)
    >>> parse_duration("seven days", name="window")
    Traceback (most recent call last):
    ...
    loopml.core._exceptions.ConfigError: The 'window' parameter must be a duration like '7d' ...
    """
    if isinstance(value, timedelta):
        return value
    if isinstance(value, bool):
        raise _error(value, name)
    if isinstance(value, int | float):
        if value < 0:
            raise _error(value, name)
        return timedelta(seconds=float(value))
    if not isinstance(value, str):
        raise _error(value, name)
    match = _PATTERN.match(value)
    if match is None:
        raise _error(value, name)
    return float(match.group(1)) * _UNITS[match.group(2)]


def format_duration(value: timedelta) -> str:
    """Write a ``timedelta`` in the largest unit that divides it exactly.

    Examples
    --------
    >>> format_duration(parse_duration("48h"))
    '2d'
    >>> format_duration(parse_duration("90s"))
    '90s'
    """
    total_ms = round(value.total_seconds() * 1000)
    for unit in ("d", "h", "m", "s", "ms"):
        step = round(_UNITS[unit].total_seconds() * 1000)
        if total_ms % step == 0 and total_ms >= step:
            return f"{total_ms // step}{unit}"
    return "0s"


def _error(value: object, name: str) -> ConfigError:
    return ConfigError(
        f"The '{name}' parameter must be a duration like '7d' (units: ms, s, m, h, d, w). "
        f"Got {value!r} instead."
    )
