"""The error contract: every kind has its status, a bug is a JSON 500 with a request id."""

from __future__ import annotations

import io
import json
import logging

import httpx
import pytest

from recsys.service import domain
from recsys.service.app import create_app
from recsys.service.errors import ServiceError, response_for
from recsys.service.observability import JsonFormatter
from recsys.service.settings import Settings
from tests.service.fakes import FailingRecommender, loader
from tests.service.servers import in_process, wait_until


def subclasses(cls: type) -> list[type]:
    return [c for sub in cls.__subclasses__() for c in (sub, *subclasses(sub))]


def test_every_service_error_declares_its_status_and_a_new_one_must():
    for cls in subclasses(ServiceError):
        assert "status" in vars(cls) and "kind" in vars(cls), cls
        r = response_for(cls("m"))
        assert r.status_code == cls.status and json.loads(r.body) == {"error": cls.kind, "message": "m"}
    with pytest.raises(TypeError, match="Forgotten must declare status"):
        class Forgotten(ServiceError):
            kind = "forgotten"


def test_every_request_error_is_a_4xx_even_one_the_map_does_not_name():
    class NewKind(domain.RequestError):
        kind = "new_kind"

    for cls in subclasses(domain.RequestError):
        r = response_for(cls("m", [{"loc": ["body"], "msg": "m", "type": "t"}]))
        assert 400 <= r.status_code < 500, cls
        assert json.loads(r.body)["error"] == cls.kind
    assert response_for(domain.UnknownUser("who")).status_code == 404
    assert response_for(domain.InvalidRequest("what")).status_code == 422


@pytest.fixture
def service_log():
    """The service's log lines as the JSON formatter writes them."""
    out = io.StringIO()
    handler = logging.StreamHandler(out)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("recsys")
    old_level = logger.level
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    yield lambda: [json.loads(line) for line in out.getvalue().splitlines()]
    logger.removeHandler(handler)
    logger.setLevel(old_level)


def test_a_bug_is_a_json_500_with_the_request_id_in_the_header_and_the_log(service_log):
    broken = FailingRecommender(ZeroDivisionError("division by zero"))
    app = create_app(Settings(artifacts="/nonexistent"), loader(broken))
    with in_process(app) as base:
        wait_until(lambda: httpx.get(f"{base}/readyz").status_code == 200)
        r = httpx.post(f"{base}/recommend", json={"user_id": 1, "k": 3}, headers={"X-Request-ID": "bug-42"})
        assert r.status_code == 500 and r.headers["content-type"] == "application/json"
        assert r.json() == {"error": "internal", "message": "internal error; see the service log"}
        assert "division" not in r.text  # no internals leave the service
        assert r.headers["x-request-id"] == "bug-42"
        lines = wait_until(lambda: [x for x in service_log() if x.get("request_id") == "bug-42"] or None)
    error = next(x for x in lines if x["level"] == "error" and "exception" in x)
    assert error["message"] == "unhandled error on POST /recommend"
    assert "ZeroDivisionError: division by zero" in error["exception"]
    access = next(x for x in lines if x["logger"] == "recsys.access")
    assert access["status"] == 500 and access["route"] == "/recommend"
