"""The page at GET / in a real headless Chromium against a real `recsys serve`: what it renders
is what POST /recommend answers, for a known user, every objective, exclude_seen and a new user."""

from __future__ import annotations

import json

import pandas as pd
import pytest

from tests.service.browser import chromium, needs_chromium, off_loopback, requested_urls, screenshot

pytestmark = [needs_chromium, pytest.mark.slow]  # a real browser: in `make test`, not test-fast
SCORES = ("score", "p_click", "p_conversion", "similarity")


@pytest.fixture(scope="module")
def browser():
    with chromium() as driver:
        yield driver


@pytest.fixture
def page(browser, default_server):
    """The page, loaded, with the served model's card filled in."""
    from selenium.webdriver.support.ui import WebDriverWait

    browser.get(f"{default_server.base}/")
    WebDriverWait(browser, 30).until(lambda d: d.execute_script("return document.body.dataset.model"))
    return browser


def by_id(driver, element_id):
    from selenium.webdriver.common.by import By

    return driver.find_element(By.ID, element_id)


def answered(driver, query: dict, state: str = "done") -> None:
    """Wait until the page has rendered its answer to `query`."""
    from selenium.webdriver.support.ui import WebDriverWait

    def ready(d):
        results = by_id(d, "results")
        sent = results.get_attribute("data-query")
        return results.get_attribute("data-state") == state and sent and json.loads(sent) == query

    WebDriverWait(driver, 30).until(ready, message=f"page did not render {state} for {query}")


def rendered(driver) -> list[dict]:
    """The items table as the page shows it: item id and the displayed numbers, in order."""
    from selenium.webdriver.common.by import By

    rows = []
    for tr in driver.find_elements(By.CSS_SELECTOR, "#items tbody tr"):
        cells = {td.get_attribute("data-field"): td.text for td in tr.find_elements(By.TAG_NAME, "td")}
        rows.append(cells)
    return rows


def assert_same(rows: list[dict], items: list[dict]) -> None:
    """Same ids, same order, same numbers to the page's 4 significant digits."""
    assert [r["item_id"] for r in rows] == [i["item_id"] for i in items]
    assert [r["rank"] for r in rows] == [str(n) for n in range(1, len(items) + 1)]
    for row, item in zip(rows, items):
        for field in SCORES:
            assert float(row[field]) == float(f"{item[field]:.4g}"), (field, row, item)


def fields(server) -> list[str]:
    """What the page asks for with every query: each item attribute of the served model."""
    return [f["name"] for f in server.get("/model").json()["item_features"]]


def select(driver, element_id: str, value: str) -> None:
    from selenium.webdriver.support.ui import Select

    Select(by_id(driver, element_id)).select_by_value(value)


def test_a_known_user_sees_what_the_api_answers_for_every_objective(page, server, tmp_path):
    by_id(page, "user-id").send_keys("3")
    by_id(page, "submit").click()
    query = {"user_id": "3", "k": 10, "objective": "ctcvr", "exclude_seen": False, "fields": fields(server)}
    answered(page, query)
    expected = server.post("/recommend", json=query).json()
    assert_same(rendered(page), expected["items"])
    card = {name: by_id(page, f"model-{name}").text for name in ("version", "items", "index", "users")}
    assert card == {"version": expected["model_version"], "items": "200", "index": "flat", "users": "100"}
    assert len(page.find_elements("css selector", "#scatter circle.dot")) == 10
    screenshot(page, tmp_path / "page.png", "/tmp/page-screenshot.png")

    orders = {}
    for objective in ("ctr", "cvr", "similarity", "ctcvr"):
        select(page, "objective", objective)  # re-ranks at once, no submit
        query = {**query, "objective": objective}
        answered(page, query)
        items = server.post("/recommend", json=query).json()["items"]
        assert_same(rendered(page), items)
        orders[objective] = tuple(i["item_id"] for i in items)
    assert len(set(orders.values())) > 1, "every objective gave the same order: nothing to see on the page"
    assert not off_loopback(requested_urls(page))


def test_exclude_seen_leaves_out_what_the_user_interacted_with(page, server, seed_data):
    inter = pd.read_csv(seed_data / "interactions.csv")
    user = str(inter["user_id"].value_counts().index[0])
    seen = set(inter.loc[inter["user_id"].astype(str) == user, "item_id"].astype(str))
    by_id(page, "user-id").send_keys(user)
    by_id(page, "k").clear()
    by_id(page, "k").send_keys("200")
    by_id(page, "submit").click()
    query = {"user_id": user, "k": 200, "objective": "ctcvr", "exclude_seen": False, "fields": fields(server)}
    answered(page, query)
    assert seen <= {r["item_id"] for r in rendered(page)}
    by_id(page, "exclude-seen").click()
    query = {**query, "exclude_seen": True}
    answered(page, query)
    rows = rendered(page)
    assert_same(rows, server.post("/recommend", json=query).json()["items"])
    assert not {r["item_id"] for r in rows} & seen and len(rows) == 200 - len(seen)


def test_a_new_user_is_described_by_the_models_own_features(page, server, tmp_path):
    from selenium.webdriver.common.by import By

    model = server.get("/model").json()
    page.find_element(By.CSS_SELECTOR, "input[name=mode][value=new]").click()
    inputs = page.find_elements(By.CSS_SELECTOR, "#features input")
    assert [i.get_attribute("data-feature") for i in inputs] == [f["name"] for f in model["user_features"]]
    features = {}
    for f, field in zip(model["user_features"], inputs):
        if f["kind"] == "numeric":
            assert field.get_attribute("type") == "number"
            value = f["max"]  # the oldest user, say: a value away from the pre-filled median
        else:
            listed = [o.get_attribute("value") for o in
                      page.find_elements(By.CSS_SELECTOR, f"datalist#{field.get_attribute('list')} option")]
            assert listed == f["values"] and listed
            value = listed[-1]
        field.clear()
        field.send_keys(str(value))
        features[f["name"]] = value
    by_id(page, "submit").click()
    query = {"user_id": "new-user", "k": 10, "objective": "ctcvr", "exclude_seen": False, "fields": fields(server),
             "user_features": features}
    answered(page, query)
    expected = server.post("/recommend", json=query)
    assert expected.status_code == 200
    assert_same(rendered(page), expected.json()["items"])
    screenshot(page, tmp_path / "new-user.png")

    numeric = next(f["name"] for f in model["user_features"] if f["kind"] == "numeric")
    by_id(page, f"feature-{numeric}").clear()
    by_id(page, "submit").click()
    query = {**query, "user_features": {k: v for k, v in features.items() if k != numeric}}
    answered(page, query, state="error")
    assert by_id(page, "error").text == "invalid_request " + server.post("/recommend", json=query).json()["message"]


def test_an_unknown_user_gets_the_apis_message_not_a_blank_page(page, server):
    by_id(page, "user-id").send_keys("nobody-at-all")
    by_id(page, "submit").click()
    query = {"user_id": "nobody-at-all", "k": 10, "objective": "ctcvr", "exclude_seen": False,
             "fields": fields(server)}
    answered(page, query, state="error")
    body = server.post("/recommend", json=query).json()
    assert body["error"] == "unknown_user"
    error = by_id(page, "error")
    assert error.is_displayed() and error.text == f"{body['error']} {body['message']}"
    assert not by_id(page, "items").is_displayed()


def test_filters_from_the_models_item_attributes_restrict_what_is_shown(page, server, tmp_path):
    from selenium.webdriver.common.by import By

    items = server.get("/model").json()["item_features"]
    shown = [i.get_attribute("data-filter") for i in page.find_elements(By.CSS_SELECTOR, "#filters input")]
    # One input per categorical attribute, two (at least, at most) per numeric one; ids are not offered.
    assert shown == [n for f in items if f["kind"] != "id" for n in [f["name"]] * (2 if f["kind"] == "numeric" else 1)]
    categorical = next(f for f in items if f["kind"] == "categorical")
    numeric = next(f for f in items if f["kind"] == "numeric")
    value = categorical["values"][0]
    limit = numeric["median"]
    by_id(page, "user-id").send_keys("3")
    by_id(page, f"filter-{categorical['name']}").send_keys(f"{value}, ")
    page.find_element(By.CSS_SELECTOR, f"input[data-filter='{numeric['name']}'][data-bound=lte]").send_keys(str(limit))
    by_id(page, "submit").click()
    query = {"user_id": "3", "k": 10, "objective": "ctcvr", "exclude_seen": False, "fields": fields(server),
             "filters": {categorical["name"]: {"in": [value]}, numeric["name"]: {"lte": limit}}}
    answered(page, query)
    expected = server.post("/recommend", json=query).json()["items"]
    assert expected, "the filter matches nothing on the seed model: pick another value"
    assert_same(rendered(page), expected)
    for tr in page.find_elements(By.CSS_SELECTOR, "#items tbody tr"):  # every attribute shown, every row matching
        attrs = {td.get_attribute("data-attribute"): td.text for td in tr.find_elements(By.TAG_NAME, "td")
                 if td.get_attribute("data-attribute")}
        assert set(attrs) == {f["name"] for f in items}
        assert attrs[categorical["name"]] == value and float(attrs[numeric["name"]]) <= limit
    screenshot(page, tmp_path / "filtered.png", "/tmp/page-filtered.png")
