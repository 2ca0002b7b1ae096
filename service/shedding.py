"""Early shedding: an overloaded `POST /recommend` answered inside the HTTP protocol.

When the backpressure gate (limits.Admission) is full, a request would be refused anyway;
refusing it through the ASGI stack costs a scope, a task, the middleware chain and the body
read, and under a flood of such requests the event loop spends its time refusing instead of
serving. `protocol(app, close)` is uvicorn's httptools protocol with one change: once the
headers of a `POST /recommend` are parsed and the gate is full, it writes a prepared
503 (the same JSON body and Retry-After as limits.Backpressure), counts it in
`recsys_rejected_total{reason="overloaded"}` and `recsys_requests_total`, logs the access line
when the level is info, and drops the body as it arrives. No task, no scope, no middleware.

Only an idle connection's request is shed here (a pipelined one behind a request in progress
must be answered in order, so it takes the ASGI path and its Backpressure 503). Probes,
metrics and admin routes are never shed.

`close`: whether a shed 503 also closes the connection. Keep-alive lets a client retry on the
same connection at once; close makes each retry pay a new connection (docs/PERFORMANCE.md
measures both).
"""

from __future__ import annotations

import logging
import time
import uuid

import httptools
from uvicorn.protocols.http.flow_control import HIGH_WATER_LIMIT
from uvicorn.protocols.http.httptools_impl import STATUS_LINE, HttpToolsProtocol

from recsys.service.errors import Overloaded, response_for
from recsys.service.limits import Admission
from recsys.service.observability import _REQUEST_ID, Metrics
from recsys.service.observability import log as access_log

SHED_PATH = b"/recommend"


def _prepared(message: str) -> tuple[bytes, bytes]:
    """(headers after the status line, body) of the overloaded 503, as Backpressure sends it."""
    response = response_for(Overloaded(message))
    head = b"".join(name + b": " + value + b"\r\n" for name, value in response.raw_headers)
    return head, response.body


def protocol(admission: Admission, metrics: Metrics, close: bool) -> type[HttpToolsProtocol]:
    """uvicorn's httptools protocol, shedding `POST /recommend` while `admission` is full."""
    head, body = _prepared(admission.refusal)
    status_line = STATUS_LINE[503]
    rejected = metrics.rejected.labels(reason="overloaded")
    labels = {"method": "POST", "route": SHED_PATH.decode(), "status": "503"}
    requests, latency = metrics.requests.labels(**labels), metrics.latency.labels(**labels)

    class SheddingProtocol(HttpToolsProtocol):
        shed = False  # the message being parsed was answered here: ignore its body

        def on_message_begin(self) -> None:
            # A pipelined request after a shed one: the keep-alive timer armed by the shed
            # answer must not close the connection while this one computes.
            self._unset_keepalive_if_required()
            self.shed = False
            super().on_message_begin()

        def on_headers_complete(self) -> None:
            if (admission.full() and (self.cycle is None or self.cycle.response_complete) and not self.pipeline
                    and self.parser.get_method() == b"POST"
                    and httptools.parse_url(self.url).path == SHED_PATH):
                self.shed = True
                if self.expect_100_continue:  # the body will not come: answer now, and close
                    self._answer(True)
                return
            super().on_headers_complete()

        def on_body(self, data: bytes) -> None:
            if not self.shed:
                super().on_body(data)

        def on_message_complete(self) -> None:
            if not self.shed:
                return super().on_message_complete()
            if not self.transport.is_closing():
                keep = self.parser.should_keep_alive() and self.parser.get_http_version() == "1.1"
                self._answer(close or not keep)

        def _answer(self, closing: bool) -> None:
            start = time.perf_counter()
            # A client pipelining requests without reading the answers would grow the write
            # buffer without bound: past uvicorn's high-water mark its connection is closed.
            closing = closing or self.transport.get_write_buffer_size() > HIGH_WATER_LIMIT
            rid = next((v.decode("latin-1") for n, v in self.headers if n == b"x-request-id"), None)
            if rid is None or not _REQUEST_ID.fullmatch(rid):
                rid = uuid.uuid4().hex
            out = [status_line, head]
            for name, value in self.server_state.default_headers:
                out += [name, b": ", value, b"\r\n"]
            out += [b"x-request-id: ", rid.encode(), b"\r\n"]
            if closing:
                out.append(b"connection: close\r\n")
            out += [b"\r\n", body]
            self.transport.write(b"".join(out))
            self.server_state.total_requests += 1
            rejected.inc()
            requests.inc()
            latency.observe(time.perf_counter() - start)
            if access_log.isEnabledFor(logging.INFO):
                path = self.url.decode("latin-1")[:200]
                access_log.info("POST %s 503", path, extra={
                    "request_id": rid, "method": "POST", "route": labels["route"], "path": path, "status": 503,
                    "latency_ms": round((time.perf_counter() - start) * 1000, 3)})
            if closing:
                self.transport.close()
            elif not self.pipeline:
                self.timeout_keep_alive_task = self.loop.call_later(self.timeout_keep_alive,
                                                                    self.timeout_keep_alive_handler)

    return SheddingProtocol
