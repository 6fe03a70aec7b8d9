"""Request ids and the JSON log format."""

from __future__ import annotations

import json
import logging

import pytest

from portside.observability.logs import REQUEST_ID, JsonFormatter, request_id_from


@pytest.mark.parametrize("incoming", ["abc-123", "0af7651916cd43dd8448eb211c80319c", "trace/span:1.2@x+y=z"])
def test_a_sane_incoming_request_id_is_kept(incoming: str) -> None:
    assert request_id_from(incoming) == incoming


@pytest.mark.parametrize("incoming", [None, "", "with space", "x" * 129, "new\nline", '"quoted"', "ünïcode"])
def test_anything_else_gets_a_fresh_random_id(incoming: str | None) -> None:
    generated = request_id_from(incoming)
    assert generated != incoming
    assert len(generated) == 32
    int(generated, 16)
    assert request_id_from(incoming) != generated


def _record(message: str, **extra: object) -> logging.LogRecord:
    record = logging.LogRecord("portside.test", logging.WARNING, __file__, 1, message, None, None)
    for key, value in extra.items():
        setattr(record, key, value)
    return record


def test_a_line_is_one_json_object_with_the_current_request_id_and_extra_fields() -> None:
    token = REQUEST_ID.set("req-1")
    try:
        line = JsonFormatter().format(_record("hello %s", status=200, route="/v2/"))
    finally:
        REQUEST_ID.reset(token)
    assert "\n" not in line
    parsed = json.loads(line)
    assert parsed["request_id"] == "req-1"
    assert parsed["level"] == "warning"
    assert parsed["logger"] == "portside.test"
    assert parsed["status"] == 200 and parsed["route"] == "/v2/"
    assert parsed["time"].endswith("+00:00")


def test_outside_a_request_there_is_no_request_id() -> None:
    assert "request_id" not in json.loads(JsonFormatter().format(_record("idle")))


def test_exceptions_are_kept_inside_the_one_line() -> None:
    try:
        raise RuntimeError("boom")
    except RuntimeError:
        import sys

        record = logging.LogRecord("portside.test", logging.ERROR, __file__, 1, "failed", None, sys.exc_info())
    line = JsonFormatter().format(record)
    assert "\n" not in line
    assert "RuntimeError: boom" in json.loads(line)["exception"]
