"""Log lines for a person (text) and for a pipeline (json), and the line that says where the
service listens."""

from __future__ import annotations

import json
import logging

from recsys.service import observability
from recsys.service.observability import JsonFormatter, TextFormatter, resolve_format
from recsys.service.server import listening
from recsys.service.settings import Settings

ACCESS = {"request_id": "abc123", "method": "POST", "route": "/recommend", "path": "/recommend", "status": 200,
          "latency_ms": 1.234, "user_id": "7"}


def _record(**extra) -> logging.LogRecord:
    record = logging.LogRecord("recsys.access", logging.INFO, __file__, 1, "POST /recommend 200", None, None)
    record.__dict__.update(extra)
    return record


def test_text_access_line_has_latency_and_request_id():
    line = TextFormatter().format(_record(**ACCESS))
    assert "POST /recommend 200" in line and "1.2 ms" in line and "id abc123" in line and "user 7" in line


def test_json_access_line_keeps_every_field():
    out = json.loads(JsonFormatter().format(_record(**ACCESS)))
    assert {k: out[k] for k in ACCESS} == ACCESS


def test_auto_is_text_on_a_terminal_and_json_otherwise(monkeypatch):
    class Stream:
        def __init__(self, tty):
            self.tty = tty

        def isatty(self):
            return self.tty

    monkeypatch.setattr(observability.sys, "stderr", Stream(True))
    assert resolve_format("auto") == "text"
    monkeypatch.setattr(observability.sys, "stderr", Stream(False))
    assert resolve_format("auto") == "json"
    assert resolve_format("text") == "text" and resolve_format("json") == "json"
    assert Settings().log_format == "auto"


def test_the_listening_line_names_the_address_model_and_pages():
    line = listening(Settings(host="127.0.0.1", port=8000), "20261128T150729535287", 1_000_000)
    assert line == ("recsys: serving http://127.0.0.1:8000 (model 20261128T150729535287, 1,000,000 items) "
                    "— docs at /docs, page at /")
