"""`recsys simulate --profile seed` reproduces the article's generator row for row."""

import numpy as np
import pandas as pd

from recsys.model.data.simulate import simulate_seed


def article_generator():
    """The article's code, re-typed (only the label column names differ)."""
    np.random.seed(42)
    num_users = 100
    num_items = 200
    num_interactions = 1000
    user_data = {
        'user_id': np.arange(1, num_users + 1),
        'user_age': np.random.randint(18, 65, size=num_users),
        'user_gender': np.random.choice(['male', 'female'], size=num_users),
        'user_occupation': np.random.choice(['student', 'worker', 'teacher'], size=num_users),
        'city_code': np.random.randint(1, 2856, size=num_users),
        'device_type': np.random.randint(0, 5, size=num_users),
    }
    item_data = {
        'item_id': np.arange(1, num_items + 1),
        'item_category': np.random.choice(['electronics', 'books', 'clothing'], size=num_items),
        'item_brand': np.random.choice(['brandA', 'brandB', 'brandC'], size=num_items),
        'item_price': np.random.randint(1, 199, size=num_items),
    }
    interactions = []
    for _ in range(num_interactions):
        user_id = np.random.randint(1, num_users + 1)
        item_id = np.random.randint(1, num_items + 1)
        click_label = np.random.randint(0, 2)
        conversion_label = 0
        if click_label == 1:
            conversion_label = np.random.binomial(1, 0.3)
        interactions.append([user_id, item_id, click_label, conversion_label])
    interaction_df = pd.DataFrame(interactions, columns=['user_id', 'item_id', 'click_label', 'conversion_label'])
    return pd.DataFrame(user_data), pd.DataFrame(item_data), interaction_df


def test_seed_profile_matches_article_in_memory():
    users, items, inter = simulate_seed()
    a_users, a_items, a_inter = article_generator()
    pd.testing.assert_frame_equal(users, a_users)
    pd.testing.assert_frame_equal(items, a_items)
    a_inter = a_inter.rename(columns={"click_label": "click", "conversion_label": "conversion"})
    pd.testing.assert_frame_equal(inter, a_inter)


def test_seed_files_match_article(seed_data):
    a_users, a_items, a_inter = article_generator()
    for name, expected in (("users", a_users), ("items", a_items)):
        got = pd.read_csv(seed_data / f"{name}.csv")
        assert list(got.columns) == list(expected.columns)
        for col in expected.columns:
            assert got[col].astype(str).tolist() == expected[col].astype(str).tolist(), (name, col)
    got = pd.read_csv(seed_data / "interactions.csv")
    assert list(got.columns) == ["user_id", "item_id", "click", "conversion"]
    assert got.to_numpy().tolist() == a_inter.to_numpy().tolist()
    # The funnel the article describes: random clicks, ~30 % conversion after a click.
    assert got["click"].sum() == 500 and got.loc[got["click"] == 0, "conversion"].sum() == 0


def test_seed_features_toml(seed_data):
    from recsys.artifacts.features import FeatureSpec

    spec = FeatureSpec.load(seed_data / "features.toml")
    dims = {f.name: (f.kind, f.embedding_dim) for f in spec.features}
    assert dims == {
        "user_id": ("id", 8), "user_age": ("numeric", None), "user_gender": ("categorical", 2),
        "user_occupation": ("categorical", 2), "city_code": ("categorical", 8), "device_type": ("categorical", 8),
        "item_id": ("id", 8), "item_category": ("categorical", 2), "item_brand": ("categorical", 2),
        "item_price": ("numeric", None),
    }
