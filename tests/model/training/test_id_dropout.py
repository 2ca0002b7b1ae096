"""Id dropout: a share of training rows see the out-of-vocabulary id, so the OOV rows that new
users and new catalogue items get are trained; without it they keep their initial values."""

from __future__ import annotations

import keras
import numpy as np
import pytest
import tensorflow as tf

from recsys.artifacts.errors import ConfigError
from recsys.model.data.dataset import load_dataset
from recsys.model.data.simulate import simulate
from recsys.model.training.config import make_config
from recsys.model.training.fit import fit
from recsys.model.training.inputs import drop_ids, id_dropout_masks, prepare
from recsys.model.training.two_tower import build_model, make_optimizer


def test_masks_drop_about_the_rate_independently_per_tower():
    masks = id_dropout_masks(100_000, 0.1, np.random.default_rng(0))
    assert set(masks) == {"drop_user", "drop_item"}
    for m in masks.values():
        assert m.dtype == bool and abs(m.mean() - 0.1) < 0.005
    assert abs((masks["drop_user"] & masks["drop_item"]).mean() - 0.01) < 0.002  # independent


def test_drop_ids_sets_only_the_id_to_the_oov_index():
    cols = {"item_id": tf.constant([3, 4, 5]), "brand": tf.constant([7, 8, 9]), "price": tf.constant([1.0, 2, 3])}
    out = drop_ids(cols, "item", np.array([True, False, True]))
    assert out["item_id"].numpy().tolist() == [0, 4, 0]
    assert out["brand"] is cols["brand"] and out["price"] is cols["price"]
    assert drop_ids({"brand": cols["brand"]}, "item", np.array([True] * 3)) == {"brand": cols["brand"]}


def test_the_default_preset_drops_ids_and_the_article_does_not():
    assert make_config("default").id_dropout > 0
    assert make_config("article").id_dropout == 0
    for bad in (-0.1, 1.0):
        with pytest.raises(ConfigError, match="id dropout"):
            make_config("default", id_dropout=bad)


@pytest.fixture(scope="module")
def tiny(tmp_path_factory):
    out = tmp_path_factory.mktemp("tiny") / "data"
    simulate("realistic", out, users=300, items=200, interactions=6000, progress=False)
    return load_dataset(out)


def oov_rows_after_fit(ds, rate: float) -> list[tuple[np.ndarray, np.ndarray]]:
    """(before, after) of the OOV row of the user and item id tables, for two epochs at `rate`."""
    config = make_config("default", epochs=2, id_dropout=rate)
    keras.utils.set_random_seed(config.seed)
    data = prepare(ds, config)
    model = build_model(ds.spec, data, config)
    tables = [model.user_encoder.get_layer("user_id_embedding").embeddings,
              model.item_encoder.get_layer("item_id_embedding").embeddings]
    before = [t.numpy()[0].copy() for t in tables]
    fit(model, make_optimizer(model, config), data, config, None, lambda msg: None)
    return [(b, t.numpy()[0]) for b, t in zip(before, tables)]


def test_id_dropout_trains_the_oov_rows_and_none_leaves_them_as_initialised(tiny):
    for before, after in oov_rows_after_fit(tiny, 0.0):
        np.testing.assert_array_equal(before, after)
    for before, after in oov_rows_after_fit(tiny, 0.1):
        assert np.abs(after - before).max() > 1e-3
