"""Early shedding through a real server configured as `recsys serve` configures uvicorn: while
every slot is taken, POST /recommend is answered 503 in the HTTP protocol (before its body is
read, so an oversized body gets the 503, not the 413 of the body limit), counted in the metrics,
with a JSON body, Retry-After and X-Request-ID; probes, metrics and admin never are."""

from __future__ import annotations

import json
import socket

import httpx
import pytest

from recsys.service.app import create_app
from tests.service.fakes import GatedRecommender, loader
from tests.service.servers import TOKEN, in_process, wait_until
from tests.service.test_backpressure import metric, post_all, ready, settings

REQUEST = b'{"user_id": 1, "k": 3}'


def raw_post(sock: socket.socket, body: bytes = REQUEST, extra: bytes = b"") -> None:
    sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n" + extra
                 + b"Content-Length: %d\r\n\r\n" % len(body) + body)


def read_response(f) -> tuple[int, dict[str, str], bytes]:
    status = int(f.readline().split()[1])
    headers = {}
    while (line := f.readline().strip()):
        name, _, value = line.decode().partition(":")
        headers[name.lower()] = value.strip()
    return status, headers, f.read(int(headers["content-length"]))


@pytest.mark.parametrize("close", [False, True], ids=["keep-alive", "close"])
def test_a_full_service_sheds_in_the_protocol_and_counts_it(close):
    gated = GatedRecommender()
    s = settings(max_in_flight=1, max_queue=0, shed_connection="close" if close else "keep-alive")
    app = create_app(s, loader(gated))
    with in_process(app, s) as base:
        ready(base)
        held = post_all(base, 1)  # takes the only slot until the gate opens
        wait_until(lambda: metric(base, "recsys_in_flight 1.0"))
        refused = post_all(base, 6)
        answers = [f.result(timeout=30) for f in refused]
        for status, _, r in answers:
            assert status == 503 and r.headers["retry-after"] == "1" and r.headers["x-request-id"]
            assert r.json() == {"error": "overloaded",
                                "message": "overloaded: 1 requests already in flight or queued; retry later"}
            assert (r.headers.get("connection") == "close") == close
        port = int(base.rsplit(":", 1)[1])
        with socket.create_connection(("127.0.0.1", port), timeout=10) as sock, sock.makefile("rb") as f:
            # A body too large for the body limit: shed before any body is looked at, so a 503
            # and not a 413; the client's request id is echoed. Then (keep-alive) a second
            # request on the same connection.
            raw_post(sock, body=b"x" * (s.max_body_bytes + 1), extra=b"X-Request-ID: shed-1\r\n")
            if not close:
                raw_post(sock)
            status, headers, body = read_response(f)
            assert (status, headers["x-request-id"], json.loads(body)["error"]) == (503, "shed-1", "overloaded")
            if close:
                assert headers["connection"] == "close" and f.read() == b""  # the server closed it
            else:
                status, headers, body = read_response(f)
                assert status == 503 and json.loads(body)["error"] == "overloaded"
        shed = 6 + (1 if close else 2)
        # Probes, metrics and admin answer while every slot is taken.
        assert httpx.get(f"{base}/healthz").status_code == 200
        assert httpx.get(f"{base}/readyz").status_code == 200
        # Admin reaches its handler, which answers for itself (this fake service has no catalogue
        # store): not the shed 503 "overloaded".
        item = httpx.get(f"{base}/admin/items/0", headers={"Authorization": f"Bearer {TOKEN}"})
        assert item.json()["message"] == "no catalogue store: set RECSYS_CATALOGUE_DB to a writable path"
        assert metric(base, f'recsys_rejected_total{{reason="overloaded"}} {float(shed)}')
        assert metric(base, f'recsys_requests_total{{method="POST",route="/recommend",status="503"}} {float(shed)}')
        gated.gate.set()
        assert held[0].result(timeout=30)[0] == 200
        # A free slot again: the next request is served.
        assert httpx.post(f"{base}/recommend", json={"user_id": 2, "k": 3}).status_code == 200
