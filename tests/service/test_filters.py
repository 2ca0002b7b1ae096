"""Filters, exclude/include lists, diversity and fields through a real `recsys serve`, on every
index kind: exact answers at every selectivity, a 422 naming each bad filter."""

from __future__ import annotations

from pathlib import Path

import httpx
import pandas as pd
import pytest

from tests.service.conftest import INDEX_KINDS
from tests.service.servers import MAX_K, start_serve


def recommend(client, **body):
    return client.post("/recommend", json=body)


def items_of(r) -> list[dict]:
    assert r.status_code == 200, r.text
    return r.json()["items"]


@pytest.fixture(scope="module")
def catalogue(seed_data: Path) -> pd.DataFrame:
    path = next(p for p in (seed_data / "items.csv", seed_data / "items.parquet") if p.exists())
    frame = pd.read_csv(path, dtype={"item_id": str}) if path.suffix == ".csv" else pd.read_parquet(path)
    return frame.astype({"item_id": str, "item_category": str, "item_brand": str})


def unfiltered_order(client, user, **body) -> list[str]:
    """Every item, best first, without restrictions: the reference a filtered answer must follow."""
    return [i["item_id"] for i in items_of(recommend(client, user_id=user, k=MAX_K, **body))]


def filter_cache(client) -> dict[str, float]:
    """The service's recsys_filter_cache_* samples, by name without the prefix."""
    return {line.split(" ")[0].removeprefix("recsys_filter_cache_"): float(line.split(" ")[1])
            for line in client.get("/metrics").text.splitlines() if line.startswith("recsys_filter_cache")}


@pytest.mark.parametrize("each_index", INDEX_KINDS, indirect=True)
def test_each_filter_kind_returns_the_true_filtered_top_k(each_index, catalogue):
    """K' covers the 200-item catalogue, so the filtered answer is the unfiltered order restricted
    to the matching items, exactly min(k, matches) of them."""
    cat = catalogue.set_index("item_id")
    books = set(cat.index[cat["item_category"] == "books"])
    cheap = set(cat.index[cat["item_price"] <= 50])
    brand = str(cat["item_brand"].iloc[0])
    cases = [
        ({"item_category": {"in": ["books"]}}, books),
        ({"item_category": {"not_in": ["books"]}}, set(cat.index) - books),
        ({"item_price": {"lte": 50}}, cheap),
        ({"item_price": {"gte": 100, "lte": 120}}, set(cat.index[cat["item_price"].between(100, 120)])),
        ({"item_category": {"in": ["books"]}, "item_price": {"lte": 50}}, books & cheap),
        ({"item_brand": {"in": [brand]}, "item_price": {"gte": 150}},
         set(cat.index[(cat["item_brand"] == brand) & (cat["item_price"] >= 150)])),
        ({"item_id": {"in": [1, "2", 3, "no-such-item"]}}, {"1", "2", "3"} & set(cat.index)),
    ]
    before = filter_cache(each_index)
    for user in (1, 7):
        order = unfiltered_order(each_index, user)
        for filters, matching in cases:
            assert matching, filters
            for k in (5, 200):
                got = [i["item_id"] for i in items_of(recommend(each_index, user_id=user, k=k, filters=filters))]
                assert got == [i for i in order if i in matching][:k], (filters, k)
    # Each filter was looked up once per request: compiled on its first, prepared on its second.
    after = filter_cache(each_index)
    assert after['lookups{result="miss"}'] - before['lookups{result="miss"}'] <= 2 * len(cases)
    assert after['lookups{result="hit"}'] - before['lookups{result="hit"}'] >= 2 * len(cases)
    assert after["bytes"] > 0


@pytest.mark.parametrize("each_index", INDEX_KINDS, indirect=True)
def test_a_filter_matching_three_items_returns_exactly_those_three(each_index, catalogue):
    three = catalogue["item_id"].iloc[[4, 50, 120]].tolist()
    for body in ({"filters": {"item_id": {"in": three}}}, {"include_items": three}):
        got = items_of(recommend(each_index, user_id=3, k=10, **body))
        assert sorted(i["item_id"] for i in got) == sorted(three)
        scores = [i["score"] for i in got]
        assert scores == sorted(scores, reverse=True)


def test_exclude_items_and_exclude_seen_compose_with_filters(server, catalogue):
    order = unfiltered_order(server, 9, exclude_seen=True)
    excluded = order[:3]
    filters = {"item_price": {"gte": 20}}
    cheap = set(catalogue.loc[catalogue["item_price"] >= 20, "item_id"])
    got = [i["item_id"] for i in items_of(recommend(server, user_id=9, k=30, exclude_seen=True, filters=filters,
                                                    exclude_items=excluded + ["unknown-id"]))]
    assert got == [i for i in order if i in cheap and i not in excluded][:30]
    assert not set(excluded) & set(got)


def test_include_items_reranks_the_clients_list(server):
    order = unfiltered_order(server, 5)
    mine = order[::-17][:8]  # a client's list, in some other order
    got = [i["item_id"] for i in items_of(recommend(server, user_id=5, k=20, include_items=mine + [999999]))]
    assert got == [i for i in order if i in set(mine)]


def test_diversity_caps_items_per_value(server, catalogue):
    category = dict(zip(catalogue["item_id"], catalogue["item_category"]))
    order = unfiltered_order(server, 2)
    got = [i["item_id"] for i in items_of(recommend(server, user_id=2, k=6,
                                                    diversity={"attribute": "item_category", "max_per_value": 2}))]
    want, per = [], {}
    for i in order:
        if per.get(category[i], 0) < 2:
            want.append(i)
            per[category[i]] = per.get(category[i], 0) + 1
    assert got == want[:6] and len(got) == 6
    # Three categories at most one each: fewer than k is all the caps allow.
    got = items_of(recommend(server, user_id=2, k=10, diversity={"attribute": "item_category", "max_per_value": 1}))
    assert len(got) == catalogue["item_category"].nunique()


def test_fields_return_item_attributes(server, catalogue):
    cat = catalogue.set_index("item_id")
    got = items_of(recommend(server, user_id=4, k=5, fields=["item_category", "item_price"]))
    for item in got:
        assert item["attributes"] == {"item_category": cat.loc[item["item_id"], "item_category"],
                                      "item_price": float(cat.loc[item["item_id"], "item_price"])}
    assert "attributes" not in items_of(recommend(server, user_id=4, k=5))[0]


@pytest.mark.parametrize("body, names", [
    ({"filters": {"colour": {"in": ["red"]}}}, "filters.colour"),
    ({"filters": {"item_price": {"in": [1]}}}, "filters.item_price"),
    ({"filters": {"item_category": {"gte": 1}}}, "filters.item_category"),
    ({"filters": {"item_category": {}}}, "filters.item_category"),
    ({"filters": {"item_category": {"in": []}}}, "filters.item_category"),
    ({"filters": {"item_category": {"in": ["books"], "not_in": ["x"]}}}, "filters.item_category"),
    ({"filters": {"item_price": {"gte": 50, "lte": 10}}}, "filters.item_price"),
    ({"filters": {"item_price": {}}}, "filters.item_price"),
    ({"filters": {"item_price": {"gte": "cheap"}}}, "filters.item_price"),
    ({"filters": {"item_price": {"below": 3}}}, "filters.item_price"),
    ({"diversity": {"attribute": "item_price", "max_per_value": 2}}, "diversity.attribute"),
    ({"diversity": {"attribute": "item_category", "max_per_value": 0}}, "diversity.max_per_value"),
    ({"fields": ["colour"]}, "fields"),
    ({"exclude_items": list(range(1001))}, "exclude_items"),
    ({"include_items": list(range(1001))}, "include_items"),
])
def test_a_bad_restriction_is_a_422_naming_it(server, body, names):
    r = recommend(server, user_id=1, k=5, **body)
    assert r.status_code == 422, r.text
    assert r.json()["error"] == "invalid_request" and names in r.json()["message"], r.json()


def test_a_filter_matching_nothing_returns_no_items(server):
    assert items_of(recommend(server, user_id=1, k=5, filters={"item_category": {"in": ["no-such"]}})) == []


def test_default_fields_and_the_popular_fallback_follow_the_settings_and_filters(seed_artifacts, catalogue):
    process = start_serve(seed_artifacts, RECSYS_DEFAULT_FIELDS="item_category",
                          RECSYS_UNKNOWN_USER_FALLBACK="popular")
    try:
        process.wait_ready()
        with httpx.Client(base_url=process.base, timeout=10) as client:
            got = items_of(recommend(client, user_id=1, k=3))
            assert [set(i["attributes"]) for i in got] == [{"item_category"}] * 3
            got = items_of(recommend(client, user_id=1, k=3, fields=["item_price"]))
            assert [set(i["attributes"]) for i in got] == [{"item_price"}] * 3
            books = set(catalogue.loc[catalogue["item_category"] == "books", "item_id"])
            r = recommend(client, user_id="nobody", k=5, filters={"item_category": {"in": ["books"]}})
            assert r.json()["fallback"] == "popular" and {i["item_id"] for i in items_of(r)} <= books
            assert len(items_of(r)) == 5
    finally:
        process.kill()
