"""GET /model tells the served model as its files have it, and GET / serves a page with no CDN."""

from __future__ import annotations

import re

import pandas as pd

from recsys.artifacts.features import FeatureSpec
from recsys.service.model_info import KNOWN_VALUES, SAMPLE_USERS, ModelInfo, example_features
from recsys.service.pages import STATIC


def test_the_model_card_matches_the_artifacts_and_the_data(server, seed_data):
    info = server.get("/model").json()
    ready = server.get("/readyz").json()
    assert info["model_version"] == ready["model_version"] and info["items"] == ready["items"] == 200
    assert info["index"] == "flat" and info["objectives"] == ["ctcvr", "ctr", "cvr", "similarity"]
    users = pd.read_csv(seed_data / "users.csv", dtype={"user_id": str})
    assert info["users"] == len(users)
    assert set(info["sample_users"]) <= set(users["user_id"]) and len(info["sample_users"]) == SAMPLE_USERS
    spec = FeatureSpec.load(seed_data / "features.toml")
    expected = [(f.name, f.kind) for f in spec.tower("user") if f.name != "user_id"]
    assert [(f["name"], f["kind"]) for f in info["user_features"]] == expected
    for f in info["user_features"]:
        column = users[f["name"]]
        if f["kind"] == "numeric":
            assert (f["min"], f["max"], f["median"]) == (column.min(), column.max(), column.median())
            assert f["values"] is None
        else:
            counts = column.astype(str).value_counts()
            assert set(f["values"]) <= set(counts.index) and counts[f["values"][0]] == counts.max()
            assert [counts[v] for v in f["values"]] == sorted((counts[v] for v in f["values"]), reverse=True)
            assert len(f["values"]) == min(KNOWN_VALUES, len(counts))
    items = pd.read_csv(seed_data / "items.csv", dtype={"item_id": str})
    assert [(f["name"], f["kind"]) for f in info["item_features"]] == [
        (f.name, f.kind) for f in spec.tower("item") if f.name != "item_id"]
    for f in info["item_features"]:
        column = items[f["name"]]
        if f["kind"] == "numeric":
            assert (f["min"], f["max"], f["median"]) == (column.min(), column.max(), column.median())
        else:
            assert f["values"][0] == column.astype(str).value_counts().index[0]


def test_example_features_are_typical_values():
    info = ModelInfo.model_validate({
        "model_version": "v", "items": 3, "index": "flat", "objectives": ["ctr"], "users": 2, "sample_users": ["a"],
        "user_features": [{"name": "age", "kind": "numeric", "min": 18, "max": 70, "median": 41.5},
                          {"name": "score", "kind": "numeric", "min": 0.1, "max": 0.9, "median": 0.41237},
                          {"name": "city", "kind": "categorical", "values": ["paris", "oslo"]},
                          {"name": "zip", "kind": "id", "values": []}], "item_features": []})
    assert example_features(info) == {"age": 42, "score": 0.412, "city": "paris", "zip": "unknown"}


def test_the_page_and_its_assets_load_nothing_from_elsewhere(server):
    page = server.get("/")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    links = re.findall(r'(?:src|href)="([^"]*)"', page.text)
    assert links and all(u.startswith(("/static/", "/docs", "data:")) for u in links), links
    for link in links:
        if link.startswith("/"):
            assert server.get(link).status_code == 200, link
    for asset in ("page.js", "page.css"):
        text = (STATIC / asset).read_text()
        assert not re.search(r"https?://(?!www\.w3\.org/2000/svg)", text), asset  # the SVG namespace is a name
    assert server.get("/static/swagger-ui/swagger-ui-bundle.js").status_code == 200
    assert server.get("/static/nothing-here.js").status_code == 404
