"""Hostile input against the real server: every one gets a fast 4xx with a JSON message."""

from __future__ import annotations

import json
import socket
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.service.servers import MAX_K, wait_until

LIMIT = 65_536  # the default max_body_bytes


def post_raw(server, raw: bytes, **headers):
    return server.post("/recommend", content=raw, headers={"content-type": "application/json", **headers})


def assert_json_error(r, status: int, error: str = "invalid_request", message: str | None = None):
    assert r.status_code == status, r.text
    assert r.headers["content-type"] == "application/json"
    body = r.json()
    assert body["error"] == error and body["message"], body
    if message is not None:
        assert body["message"] == message, body
    return body


def test_a_body_over_the_limit_is_413_before_it_is_read(server):
    r = post_raw(server, json.dumps({"user_id": "x" * LIMIT, "k": 1}).encode())
    assert_json_error(r, 413, "payload_too_large", f"request body larger than {LIMIT} bytes")


def test_a_chunked_body_over_the_limit_is_413(server):
    def chunks():
        yield b'{"user_id": "'
        for _ in range(100):
            yield b"x" * 1024
        yield b'"}'

    r = server.post("/recommend", content=chunks(), headers={"content-type": "application/json"})
    assert "content-length" not in r.request.headers  # really streamed
    assert_json_error(r, 413, "payload_too_large")


def test_a_body_just_under_the_limit_is_parsed(server):
    body = json.dumps({"user_id": 1, "k": 1, "pad": ""}).encode()
    body = body.replace(b'"pad": ""', b'"pad": "' + b"x" * (LIMIT - len(body)) + b'"')
    assert len(body) == LIMIT
    assert_json_error(post_raw(server, body), 422, message="pad: Extra inputs are not permitted")


@pytest.mark.parametrize("raw", [b"[" * 100_000 + b"]" * 100_000, b'{"a":' * 5000 + b"1" + b"}" * 5000,
                                 b'{"user_id": 1, "k": 1, "user_features": {"a": [[[[[[[[1]]]]]]]]}}'])
def test_deep_nesting_is_refused_before_parsing(server, raw):
    if len(raw) > LIMIT:
        raw = raw[: LIMIT // 2] + raw[-LIMIT // 2 + 1:]
    assert_json_error(post_raw(server, raw), 422, message="body nests deeper than 8 levels")


def test_brackets_inside_strings_are_not_nesting(server):
    r = server.post("/recommend", json={"user_id": "[{" * 30, "k": 1})
    assert_json_error(r, 404, "unknown_user")


@pytest.mark.parametrize("raw, message", [
    (b'{"user_id": 1, "k": Infinity}', "k: Input should be a valid integer"),
    (b'{"user_id": 1, "k": 1' + b"0" * 5000 + b"}", "body is not valid JSON"),  # beyond Python's int digits
    (b'{"user_id": "\xff\xfe", "k": 1}', "body is not valid JSON"),  # not UTF-8
    (b'{"user_id": 1, "k": 100000000000000000000000000000}', f"k: must be at most {MAX_K} (got 10**29)"),
    (b'{"user_id": 1, "k": 1, "k": 2, "objective": {"$gt": ""}}', "objective: Input should be 'ctcvr', 'ctr', "
                                                                    "'cvr' or 'similarity'"),
    (b'{"user_id": "\\ud800", "k": 1}', "user_id: must be an integer or a string of 1-128 printable characters"),
    (b'{"user_id": "a\\u2028b", "k": 1}', "user_id: must not contain control characters"),
    (b'{"user_id": "a\\u001bb", "k": 1}', "user_id: must not contain control characters"),
])
def test_malformed_values_are_422_with_a_message(server, raw, message):
    body = assert_json_error(post_raw(server, raw), 422)
    if "10**29" in message:
        message = message.replace("10**29", str(10**29))
    assert body["message"] == message


def test_a_body_that_is_not_json_typed_is_422(server):
    r = server.post("/recommend", content=b'{"user_id": 1, "k": 1}', headers={"content-type": "text/plain"})
    assert_json_error(r, 422, message="body must be a JSON object (send Content-Type: application/json)")


@pytest.mark.parametrize("user_id", ["ユーザー", "😀", "é" * 128, "Ω" * 128, "x y", "1 "])
def test_unicode_user_ids_are_looked_up_not_rejected(server, user_id):
    r = server.post("/recommend", json={"user_id": user_id, "k": 1})
    body = assert_json_error(r, 404, "unknown_user")
    assert repr(user_id) in body["message"]


def test_a_user_id_over_128_characters_is_422(server):
    assert_json_error(server.post("/recommend", json={"user_id": "é" * 129, "k": 1}), 422)


def test_every_error_echoes_a_request_id(server):
    r = post_raw(server, b"{bad", **{"x-request-id": "hostile-1"})
    assert r.status_code == 422 and r.headers["x-request-id"] == "hostile-1"


# --- One query's failure stays its own; numbers beyond the training data's range --------------

FEATURES = {"user_age": 30, "user_gender": "female", "user_occupation": "student", "city_code": "3",
            "device_type": "mobile"}
HUGE = "1" + "0" * 400  # 10**400 written out: finite as a Python int, beyond every float


def cold(age: str) -> bytes:
    """A cold-start body whose user_age is the JSON number `age`, written as given."""
    body = json.dumps({"user_id": "new-1", "k": 5, "user_features": {**FEATURES, "user_age": 0}})
    return body.replace('"user_age": 0', f'"user_age": {age}').encode()


def request_bytes(body: bytes, path: str = "/recommend", **headers: str) -> bytes:
    head = [f"POST {path} HTTP/1.1", "Host: test", "Content-Type: application/json",
            f"Content-Length: {len(body)}", *(f"{k}: {v}" for k, v in headers.items())]
    return ("\r\n".join(head) + "\r\n\r\n").encode() + body


def read_responses(sock: socket.socket, count: int) -> list[tuple[int, bytes]]:
    """`count` (status, body) pairs from a keep-alive connection, fewer if the server closes it."""
    buffer, out = b"", []
    while len(out) < count:
        while b"\r\n\r\n" not in buffer:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buffer += chunk
        head, _, buffer = buffer.partition(b"\r\n\r\n")
        lines = head.decode("latin-1").split("\r\n")
        length = next(int(v) for k, _, v in (line.partition(":") for line in lines[1:])
                      if k.strip().lower() == "content-length")
        while len(buffer) < length:
            chunk = sock.recv(65536)
            if not chunk:
                return out
            buffer += chunk
        out.append((int(lines[0].split()[1]), buffer[:length]))
        buffer = buffer[length:]
    return out


def pipeline(port: int, bodies: list[bytes]) -> list[tuple[int, bytes]]:
    """All `bodies` written at once on one keep-alive connection; the answers in order."""
    with socket.create_connection(("127.0.0.1", port), timeout=30) as sock:
        sock.sendall(b"".join(request_bytes(b) for b in bodies))
        return read_responses(sock, len(bodies))


def test_a_huge_integer_feature_is_422_for_that_request_alone(default_server):
    normal = [json.dumps({"user_id": i % 50 + 1, "k": 5}).encode() for i in range(40)]
    connections = [normal[i::4] for i in range(4)]
    connections[1].insert(5, cold(HUGE))
    for _ in range(3):
        with ThreadPoolExecutor(4) as pool:
            answers = list(pool.map(lambda bodies: pipeline(default_server.port, bodies), connections))
        assert [len(a) for a in answers] == [len(c) for c in connections]  # nothing dropped
        odd = answers[1].pop(5)
        assert odd[0] == 422, odd
        assert json.loads(odd[1])["message"].startswith("user_features.user_age: must be between")
        assert [status for a in answers for status, _ in a] == [200] * 40


@pytest.mark.parametrize("age", ["3.5e38", "1e300", "-1e39", "1" + "0" * 40, "1e30", HUGE, "-" + HUGE])
def test_a_numeric_feature_far_beyond_the_training_data_is_422_naming_it(server, age):
    body = assert_json_error(post_raw(server, cold(age)), 422)
    assert body["message"].startswith("user_features.user_age: must be between"), body
    assert body["detail"][0]["loc"] == ["body", "user_features", "user_age"]
    assert body["detail"][0]["type"] == "out_of_range"


@pytest.mark.parametrize("age", ["0", "95", "-3", "250.5"])
def test_plausible_numeric_features_are_served(server, age):
    r = post_raw(server, cold(age))
    assert r.status_code == 200, r.text
    items = r.json()["items"]
    assert len(items) == 5 and all(i["similarity"] != 0.0 for i in items)


# --- Transport --------------------------------------------------------------------------------

def metric(server, status: str, route: str = "/recommend") -> float:
    text = server.get("/metrics").text
    key = f'recsys_requests_total{{method="POST",route="{route}",status="{status}"}}'
    return sum(float(line.split()[-1]) for line in text.splitlines() if line.startswith(key + " "))


def test_a_client_leaving_mid_body_is_counted_499_not_500(server, default_server):
    before_499, before_500 = metric(server, "499"), metric(server, "500")
    with socket.create_connection(("127.0.0.1", default_server.port), timeout=10) as sock:
        sock.sendall(b"POST /recommend HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
                     b"Content-Length: 1000\r\n\r\n" + b'{"user_id"')  # 10 of the 1000 bytes
    wait_until(lambda: metric(server, "499") == before_499 + 1)
    assert metric(server, "500") == before_500


def send_coded(port: int, coding: str) -> list[tuple[int, bytes]]:
    body = b'{"user_id": 1, "k": 1}'
    raw = (f"POST /recommend HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
           f"Transfer-Encoding: {coding}\r\n\r\n").encode() + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n"
    with socket.create_connection(("127.0.0.1", port), timeout=10) as sock:
        sock.sendall(raw)
        return read_responses(sock, 1)


@pytest.mark.parametrize("coding", ["gzip, chunked", "deflate,chunked", "x-custom, chunked"])
def test_a_transfer_coding_before_chunked_is_501_not_read_as_plain_chunked(default_server, coding):
    [(status, body)] = send_coded(default_server.port, coding)
    assert status == 501 and json.loads(body)["error"] == "not_implemented", body


@pytest.mark.parametrize("coding", ["gzip", "chunked, chunked"])
def test_a_transfer_coding_the_http_parser_refuses_is_400(default_server, coding):
    [(status, _)] = send_coded(default_server.port, coding)  # the server's own plain-text answer
    assert status == 400


def test_plain_chunked_is_still_accepted(default_server):
    body = b'{"user_id": 1, "k": 1}'
    raw = (b"POST /recommend HTTP/1.1\r\nHost: test\r\nContent-Type: application/json\r\n"
           b"Transfer-Encoding: chunked\r\n\r\n" + f"{len(body):x}\r\n".encode() + body + b"\r\n0\r\n\r\n")
    with socket.create_connection(("127.0.0.1", default_server.port), timeout=10) as sock:
        sock.sendall(raw)
        assert read_responses(sock, 1)[0][0] == 200


def test_an_integer_user_id_is_capped_like_a_string(server):
    body = assert_json_error(post_raw(server, b'{"user_id": ' + b"9" * 4300 + b', "k": 1}'), 422)
    assert body["message"] == "user_id: must be an integer or a string of 1-128 printable characters"
    assert len(body["message"]) < 200
    assert_json_error(post_raw(server, b'{"user_id": 1' + b"0" * 128 + b', "k": 1}'), 422)  # 129 digits
    assert_json_error(post_raw(server, b'{"user_id": 9' + b"9" * 127 + b', "k": 1}'), 404, "unknown_user")


@pytest.mark.parametrize("path", ["/healthz", "/readyz"])
def test_probes_answer_head_like_get(server, path):
    head, get = server.head(path), server.get(path)
    assert head.status_code == get.status_code == 200 and head.content == b""
