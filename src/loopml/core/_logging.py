"""Logging that never writes a secret.

``get_logger`` returns a standard library logger under ``loopml.``; a filter on it masks
passwords in URLs (``postgresql://user:secret@host``) and bearer tokens.
"""

from __future__ import annotations

import logging
import re

__all__ = ["get_logger", "redact"]

_URL_PASSWORD = re.compile(r"(?P<scheme>[a-zA-Z][a-zA-Z0-9+.-]*://[^:/@\s]*:)[^@\s]+@")
_BEARER = re.compile(r"(?i)(bearer\s+)[A-Za-z0-9._~+/=-]+")
_KEYVALUE = re.compile(r"(?i)((?:password|token|secret|api_key)\s*[=:]\s*)[^\s,;&]+")


def redact(text: str) -> str:
    """Mask passwords in URLs, bearer tokens and ``password=...`` pairs.

    >>> redact("postgresql://bob:hunter2@db/x with Bearer abc.def and token=xyz")
    'postgresql://bob:***@db/x with Bearer *** and token=***'
    """
    text = _URL_PASSWORD.sub(r"\g<scheme>***@", text)
    text = _BEARER.sub(r"\1***", text)
    return _KEYVALUE.sub(r"\1***", text)


class _RedactingFilter(logging.Filter):
    def filter(self, record: logging.LogRecord) -> bool:
        message = record.getMessage()
        cleaned = redact(message)
        if cleaned != message:
            record.msg, record.args = cleaned, None
        return True


def get_logger(name: str) -> logging.Logger:
    """A logger named ``loopml.<name>`` whose records never carry secrets."""
    logger = logging.getLogger(name if name.startswith("loopml") else f"loopml.{name}")
    if not any(isinstance(f, _RedactingFilter) for f in logger.filters):
        logger.addFilter(_RedactingFilter())
    return logger
