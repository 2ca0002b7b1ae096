"""Hostile input against the real server: every one gets a fast 4xx with a JSON message."""

from __future__ import annotations

import json

import pytest

from tests.service.servers import MAX_K

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
