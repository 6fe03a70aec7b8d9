"""Structured logs: one JSON object per line, each carrying the id of the request it belongs to."""

from __future__ import annotations

import json
import logging
import re
import secrets
import sys
from contextvars import ContextVar
from datetime import UTC, datetime
from typing import Any

# The id of the request being handled in this task (contextvars follow it into every await).
REQUEST_ID: ContextVar[str | None] = ContextVar("portside_request_id", default=None)

REQUEST_ID_HEADER = "x-request-id"
# An incoming id is kept if it is short and plain (no spaces or quotes to break log parsers).
_SANE_REQUEST_ID = re.compile(r"^[A-Za-z0-9._:@/+=-]{1,128}\Z")

ACCESS_LOGGER = "portside.access"

# The attributes every LogRecord has; anything else was passed in `extra=` and goes into the line.
_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {"message", "asctime"}


def request_id_from(incoming: str | None) -> str:
    """The caller's ``X-Request-Id`` if it is sane, else a new random id."""
    if incoming and _SANE_REQUEST_ID.match(incoming):
        return incoming
    return secrets.token_hex(16)


class JsonFormatter(logging.Formatter):
    """Formats a record as one line of JSON with the current request id."""

    def format(self, record: logging.LogRecord) -> str:
        """The JSON line."""
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        for key, value in vars(record).items():
            if key not in _STANDARD and not key.startswith("_"):
                line[key] = value
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        return json.dumps(line, default=str, separators=(",", ":"))


class _PortsideHandler(logging.StreamHandler):  # type: ignore[type-arg]
    """Marks the handler ``configure_logging`` installed, so a second call replaces it."""


def configure_logging(level: str, access_log: bool) -> None:
    """Send ``portside.*`` records as JSON lines to stderr; request lines only with ``access_log``."""
    root = logging.getLogger("portside")
    for handler in [h for h in root.handlers if isinstance(h, _PortsideHandler)]:
        root.removeHandler(handler)
    handler = _PortsideHandler(sys.stderr)
    handler.setFormatter(JsonFormatter())
    root.addHandler(handler)
    root.setLevel(level.upper())
    # Granian configures the root logger for its own lines; ours are already written.
    root.propagate = False
    # The request lines have their own switch, independent of the level of the other logs.
    logging.getLogger(ACCESS_LOGGER).setLevel(logging.INFO if access_log else logging.CRITICAL + 1)
