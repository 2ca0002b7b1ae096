"""/docs works offline (a real headless Chromium with every network but loopback cut off) and
its examples fit the served model: they are requests and answers of the real service."""

from __future__ import annotations

import json
import threading

import httpx
import pytest
from fastapi import FastAPI

from recsys.artifacts.features import FeatureSpec
from recsys.service.app import create_app
from recsys.service.docs import TAGS
from recsys.service.settings import Settings
from recsys.service.state import load_recommender
from tests.service.browser import chromium, needs_chromium, off_loopback, requested_urls, screenshot
from tests.service.servers import in_process, wait_until


def examples(schema: dict, status: str | None = None) -> dict:
    op = schema["paths"]["/recommend"]["post"]
    content = op["requestBody"] if status is None else op["responses"][status]
    return {name: e["value"] for name, e in content["content"]["application/json"].get("examples", {}).items()}


def user_feature_names(seed_data) -> list[str]:
    spec = FeatureSpec.load(seed_data / "features.toml")
    return [n for n in spec.names("user") if n != "user_id"]


def test_request_examples_are_answered_by_the_served_model(server, seed_data):
    schema = server.get("/openapi.json").json()
    requests = examples(schema)
    assert set(requests) == {"known_user", "by_click", "new_user"}
    assert sorted(requests["new_user"]["user_features"]) == sorted(user_feature_names(seed_data))
    assert requests["known_user"]["user_id"] in server.get("/model").json()["sample_users"]
    for name, body in requests.items():
        r = server.post("/recommend", json=body)
        assert r.status_code == 200, (name, r.text)
        assert len(r.json()["items"]) == body["k"]
    props = schema["components"]["schemas"]["RecommendRequest"]["properties"]
    assert props["user_features"]["examples"] == [requests["new_user"]["user_features"]]


def test_error_examples_are_the_bodies_the_service_sends(server):
    schema = server.get("/openapi.json").json()
    new_user = examples(schema)["new_user"]
    sent = {"k_too_small": {"user_id": 1, "k": 0},
            "unknown_feature": {**new_user, "user_features": {**new_user["user_features"], "colour": "red"}},
            "unknown_user": {"user_id": new_user["user_id"], "k": 10}}
    shown = {**examples(schema, "422"), **examples(schema, "404")}
    assert set(shown) == set(sent)
    for name, body in sent.items():
        r = server.post("/recommend", json=body)
        assert r.status_code in (404, 422) and r.json() == shown[name], name


def test_every_route_is_tagged_and_recommend_is_described(server):
    schema = server.get("/openapi.json").json()
    names = {t["name"] for t in TAGS}
    assert [t["name"] for t in schema["tags"]] == [t["name"] for t in TAGS]
    for path, ops in schema["paths"].items():
        for method, op in ops.items():
            assert len(op["tags"]) == 1 and op["tags"][0] in names, (method, path)
            assert op.get("summary"), (method, path)
    recommend = schema["paths"]["/recommend"]["post"]
    assert recommend["tags"] == ["recommend"] and "objective" in recommend["description"]
    assert schema["paths"]["/admin/reload"]["post"]["tags"] == ["admin"]
    assert server.get("/redoc").status_code == 404  # its default page loads from a CDN: off


def test_before_the_model_loads_the_503_example_is_what_is_sent_and_a_load_brings_the_examples(seed_artifacts):
    release = threading.Event()

    def gated(settings, version=None):
        release.wait(60)
        return load_recommender(settings, version)

    app = create_app(Settings(artifacts=seed_artifacts, log_level="warning"), gated)
    with in_process(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        before = client.get("/openapi.json").json()
        assert examples(before) == {}  # no model: no user to show
        r = client.post("/recommend", json={"user_id": 1, "k": 3})
        assert r.status_code == 503 and r.json() == examples(before, "503")["not_ready"]
        assert client.get("/model").json() == r.json()
        release.set()
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60)
        after = client.get("/openapi.json").json()  # not the schema cached before the load
        assert examples(after)["known_user"]["user_id"] == client.get("/model").json()["sample_users"][0]
        assert client.post("/recommend", json=examples(after)["new_user"]).status_code == 200


def test_with_the_popular_fallback_no_404_example_is_shown(seed_artifacts):
    app = create_app(Settings(artifacts=seed_artifacts, log_level="warning", unknown_user_fallback="popular"))
    with in_process(app) as base, httpx.Client(base_url=base, timeout=30) as client:
        wait_until(lambda: client.get("/readyz").status_code == 200, timeout=60)
        schema = client.get("/openapi.json").json()
        assert examples(schema, "404") == {} and examples(schema)["known_user"]
        assert client.post("/recommend", json={"user_id": "new-user", "k": 3}).json()["fallback"] == "popular"


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


def wait_for(driver, css: str, timeout: float = 30):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support import expected_conditions as ec
    from selenium.webdriver.support.ui import WebDriverWait

    return WebDriverWait(driver, timeout).until(ec.presence_of_element_located((By.CSS_SELECTOR, css)),
                                                message=f"{css} never appeared")


@needs_chromium
@pytest.mark.slow  # a real browser
def test_docs_render_offline_and_try_it_out_works_on_the_served_model(browser, default_server, server, tmp_path):
    from selenium.webdriver.common.by import By
    from selenium.webdriver.support.ui import Select, WebDriverWait

    browser.get(f"{default_server.base}/docs")
    block = wait_for(browser, '.swagger-ui .opblock:has(.opblock-summary-path[data-path="/recommend"])')
    shown = {e.get_attribute("data-path") for e in browser.find_elements(By.CSS_SELECTOR, ".opblock-summary-path")}
    assert shown == set(server.get("/openapi.json").json()["paths"])

    block.find_element(By.CSS_SELECTOR, ".opblock-summary-control").click()
    wait_for(browser, ".try-out__btn").click()
    Select(wait_for(browser, ".opblock-body .examples-select-element")).select_by_value("new_user")
    body = json.loads(browser.find_element(By.CSS_SELECTOR, "textarea.body-param__text").get_attribute("value"))
    assert body == examples(server.get("/openapi.json").json())["new_user"]
    browser.find_element(By.CSS_SELECTOR, ".btn.execute").click()
    status = wait_for(browser, ".live-responses-table .response .response-col_status")
    WebDriverWait(browser, 30).until(lambda d: status.text.strip())
    assert status.text.strip().startswith("200")
    answer = browser.find_element(By.CSS_SELECTOR, ".live-responses-table .response-col_description pre").text
    assert json.loads(answer) == server.post("/recommend", json=body).json()
    screenshot(browser, tmp_path / "docs.png", "/tmp/docs-screenshot.png")

    urls = requested_urls(browser)
    assert f"{default_server.base}/static/swagger-ui/swagger-ui-bundle.js" in urls
    assert not off_loopback(urls), off_loopback(urls)


@needs_chromium
@pytest.mark.slow
def test_the_default_cdn_docs_stay_blank_in_the_same_browser(browser):
    """The control: FastAPI's own /docs page, which loads Swagger UI from a CDN, renders nothing
    here, and the request log sees it trying to leave the machine."""
    from selenium.webdriver.common.by import By

    app = FastAPI()

    @app.get("/ping")
    def ping() -> dict:
        return {}

    with in_process(app) as base:
        requested_urls(browser)  # drain what earlier tests left
        browser.get(f"{base}/docs")
        wait_until(lambda: off_loopback(requested_urls(browser)), timeout=30)
        wait_until(lambda: browser.execute_script("return document.readyState") == "complete", timeout=30)
        assert browser.execute_script("return typeof SwaggerUIBundle") == "undefined"
        assert not browser.find_elements(By.CSS_SELECTOR, ".swagger-ui .opblock")

