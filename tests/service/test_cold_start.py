"""Cold start: users the feature store does not know, served from the features they send."""

from __future__ import annotations

import pandas as pd
import pytest

FEATURES = {"user_age": 30, "user_gender": "female", "user_occupation": "student", "city_code": "3",
            "device_type": "mobile"}


def recommend(server, **body):
    return server.post("/recommend", json={"k": 10, **body})


def test_a_new_user_with_features_gets_model_scores(server):
    r = recommend(server, user_id="new-1", user_features=FEATURES)
    assert r.status_code == 200, r.text
    body = r.json()
    assert body["user_id"] == "new-1" and "fallback" not in body and len(body["items"]) == 10
    scores = [i["score"] for i in body["items"]]
    assert scores == sorted(scores, reverse=True)
    for i in body["items"]:
        assert abs(i["score"] - i["p_click"] * i["p_conversion"]) < 1e-6


def test_new_users_share_the_out_of_vocabulary_id_so_only_features_matter(server):
    a = recommend(server, user_id="new-a", user_features=FEATURES).json()["items"]
    b = recommend(server, user_id=987654, user_features=FEATURES).json()["items"]
    assert a == b
    other = recommend(server, user_id="new-a", user_features={**FEATURES, "user_age": 64, "city_code": "9"})
    assert [i["score"] for i in other.json()["items"]] != [i["score"] for i in a]
    # An integer category is the same category as its string.
    assert recommend(server, user_id="new-c", user_features={**FEATURES, "city_code": 3}).json()["items"] == a


def test_a_known_user_sending_features_is_scored_with_them_for_this_request(server, seed_data):
    plain = recommend(server, user_id=5).json()
    fresh = recommend(server, user_id=5, user_features=FEATURES).json()
    assert [i["score"] for i in fresh["items"]] != [i["score"] for i in plain["items"]]
    assert recommend(server, user_id=5).json() == plain  # the store did not change
    # Sending exactly the stored values is the stored user: its own id row, not the OOV one.
    users = pd.read_csv(seed_data / "users.csv", dtype=str).set_index("user_id")
    stored = {k: (float(v) if k == "user_age" else v) for k, v in users.loc["5"].items() if k in FEATURES}
    assert recommend(server, user_id=5, user_features=stored).json() == plain


def test_an_unknown_user_without_features_is_404_by_default(server):
    r = recommend(server, user_id="new-2")
    assert r.status_code == 404 and r.json()["error"] == "unknown_user"
    assert "user_features" in r.json()["message"]


@pytest.mark.parametrize("features, field, message", [
    ({k: v for k, v in FEATURES.items() if k != "device_type"}, "device_type",
     "missing; a new user needs every user feature"),
    ({**FEATURES, "favourite_colour": "red"}, "favourite_colour", "not a feature of this model's user tower"),
    ({**FEATURES, "user_id": "x"}, "user_id", "not a feature of this model's user tower"),
    ({**FEATURES, "user_age": "thirty"}, "user_age", "must be a finite number"),
    ({**FEATURES, "user_gender": 1.5}, "user_gender", "must be a string of at most 128 characters or an integer"),
])
def test_features_are_checked_against_the_feature_spec(server, features, field, message):
    for user_id in ("new-3", 5):  # checked for known users too: a client bug should surface either way
        r = recommend(server, user_id=user_id, user_features=features)
        assert r.status_code == 422, r.text
        body = r.json()
        assert body["message"].startswith(f"user_features.{field}: {message}")
        assert body["detail"][0]["loc"] == ["body", "user_features", field]


@pytest.mark.parametrize("value", [float("nan"), float("inf"), True, None, [1], {"a": 1}, "x" * 129, "a\x00b"])
def test_feature_values_of_the_wrong_shape_are_422_naming_the_field(server, value):
    import json

    raw = json.dumps({"user_id": "new-4", "user_features": {**FEATURES, "user_age": value}}).encode()
    r = server.post("/recommend", content=raw, headers={"content-type": "application/json"})
    assert r.status_code == 422 and r.json()["error"] == "invalid_request"
    assert r.json()["message"].startswith(("user_features.user_age: ", "user_features: 'user_age'"))


def test_too_many_features_is_422(server):
    r = recommend(server, user_id="new-5", user_features={f"f{i}": 1 for i in range(65)})
    assert r.status_code == 422 and r.json()["message"].startswith("user_features: ")
