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


class AccessLog:
    """The request lines: the same JSON as :class:`JsonFormatter` writes, without a LogRecord.

    One line per request is the hottest logging there is; building a record and passing it
    through the handler chain cost more than the rest of a cached manifest GET's logging.
    """

    def __init__(self) -> None:
        self._logger = logging.getLogger(ACCESS_LOGGER)

    def enabled(self) -> bool:
        """Whether request lines are written (the ``access_log`` setting)."""
        return self._logger.isEnabledFor(logging.INFO)

    def write(self, fields: dict[str, Any]) -> None:
        """Write one request line with ``fields`` after the standard ones."""
        handler = next((h for h in logging.getLogger("portside").handlers if isinstance(h, _PortsideHandler)), None)
        if handler is None:
            # Logging was configured some other way: go through it.
            self._logger.handle(
                self._logger.makeRecord(ACCESS_LOGGER, logging.INFO, "", 0, "request", (), None, extra=fields)
            )
            return
        line: dict[str, Any] = {
            "time": datetime.now(UTC).isoformat(timespec="milliseconds"),
            "level": "info",
            "logger": ACCESS_LOGGER,
            "message": "request",
        }
        request_id = REQUEST_ID.get()
        if request_id is not None:
            line["request_id"] = request_id
        line.update(fields)
        text = json.dumps(line, default=str, separators=(",", ":")) + "\n"
        handler.acquire()
        try:
            handler.stream.write(text)
            handler.stream.flush()
        finally:
            handler.release()


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
