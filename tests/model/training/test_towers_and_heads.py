"""Preprocessing inside the towers, OOV handling, export parity, numpy heads parity."""

import numpy as np
import pytest
import tensorflow as tf

from recsys.artifacts.features import FeatureSpec
from recsys.artifacts.heads import Heads
from recsys.artifacts.towers import Tower
from recsys.model.data.dataset import load_dataset
from recsys.model.training.heads import HeadsLayer
from recsys.model.training.towers import build_encoder, build_tower, encode, fit_preprocessing
from recsys.model.training.export import export_tower


@pytest.fixture(scope="module")
def dataset(seed_data):
    return load_dataset(seed_data)


def test_vocabulary_covers_last_ids_and_unknowns_share_the_oov_bucket(dataset):
    spec = dataset.spec
    prep = fit_preprocessing(spec.tower("item"), dataset.items)
    tower = build_tower("item_tower", spec.tower("item"), prep, build_encoder("item", spec.tower("item"), prep))
    lookup = tower.get_layer("item_id_lookup")
    ids = lookup(tf.constant(["1", "200", "201", "nope"])).numpy()
    assert ids[0] != 0 and ids[1] != 0  # the article's num_buckets bug dropped id 200
    assert ids[2] == 0 and ids[3] == 0  # one OOV bucket
    assert len(set(lookup(tf.constant([str(i) for i in range(1, 201)])).numpy())) == 200


def test_numeric_features_are_standardised_inside_the_graph(dataset):
    spec = dataset.spec
    prep = fit_preprocessing(spec.tower("user"), dataset.users)
    ages = dataset.users["user_age"].to_numpy(np.float64)
    assert np.isclose(prep["user_age"]["mean"], ages.mean()) and np.isclose(prep["user_age"]["variance"], ages.var())
    norm = build_encoder("user", spec.tower("user"), prep).get_layer("user_age_norm")
    out = norm(tf.constant(ages[:, None], tf.float32)).numpy()[:, 0]
    assert np.allclose(out, (ages - ages.mean()) / ages.std(), atol=1e-4)


def test_exported_tower_equals_keras_tower(dataset, tmp_path):
    spec = dataset.spec
    feats = spec.tower("user")
    prep = fit_preprocessing(feats, dataset.users)
    tower = build_tower("user_tower", feats, prep, build_encoder("user", feats, prep))
    export_tower(tower, feats, tmp_path / "user_tower")
    loaded = Tower(tmp_path / "user_tower", feats)
    frame = dataset.users.copy()
    frame.loc[0, "user_id"] = "never-seen"  # OOV goes through the same graph
    from recsys.artifacts.feature_store import to_columns

    cols = to_columns(frame, feats)
    expected = tower({k: tf.constant(v.astype(str) if v.dtype == object else v) for k, v in cols.items()}).numpy()
    got = loaded(cols)
    assert got.shape == (100, 32)
    assert np.abs(got - expected).max() <= 1e-5


def test_numpy_encoding_equals_the_graph_lookup(dataset):
    """Training encodes ids once in numpy; the exported graph must map them the same way."""
    feats = dataset.spec.tower("user")
    prep = fit_preprocessing(feats, dataset.users.iloc[:60])  # users 61..100 are out of vocabulary
    tower = build_tower("user_tower", feats, prep, build_encoder("user", feats, prep))
    codes = encode(dataset.users, feats, prep)
    for f in feats:
        if not f.is_numeric:
            graph = tower.get_layer(f"{f.name}_lookup")(tf.constant(dataset.users[f.name].astype(str).to_numpy()))
            assert (codes[f.name] == graph.numpy()).all(), f.name
    assert (codes["user_id"][60:] == 0).all() and (codes["user_id"][:60] > 0).all()


@pytest.mark.parametrize("inputs, hidden", [("dot", ()), ("dot+product", ()), ("dot+product", (16,)), ("full", (16,))])
def test_numpy_heads_equal_keras_heads(inputs, hidden):
    rng = np.random.default_rng(1)
    layer = HeadsLayer(inputs, hidden)
    u = rng.normal(size=(64, 8)).astype(np.float32)
    v = rng.normal(size=(64, 8)).astype(np.float32)
    ctr, cvr = (t.numpy() for t in layer(tf.constant(u), tf.constant(v)))
    heads = Heads.from_arrays(*layer.export().to_arrays())
    lg = heads.logits(u, v)
    assert np.abs(lg["ctr"] - ctr).max() <= 1e-5 and np.abs(lg["cvr"] - cvr).max() <= 1e-5
    # The serving forms, one user against many candidates (1, 1, D) x (1, K, D) and a user per row
    # against its own candidates (B, 1, D) x (B, K, D), take the per-user first layer: equal to the
    # pairwise form above, both heads.
    many = heads.logits(u[:1, None, :], v[None, :, :])
    grid = heads.logits(u[:4, None, :], v.reshape(4, 16, 8))
    for head in ("ctr", "cvr"):
        assert np.abs(many[head][0] - heads.logits(np.repeat(u[:1], 64, 0), v)[head]).max() <= 1e-5
        assert np.abs(grid[head].ravel() - heads.logits(np.repeat(u[:4], 16, 0), v)[head]).max() <= 1e-5


def test_dot_heads_cannot_reorder_but_product_heads_can():
    rng = np.random.default_rng(2)
    u = rng.normal(size=(1, 8)).astype(np.float32)
    v = rng.normal(size=(50, 8)).astype(np.float32)
    sims = (u @ v.T)[0]
    dot = Heads("dot", {h: [(np.array([[1.5]], np.float32), np.zeros(1, np.float32), "linear")] for h in ("ctr", "cvr")})
    assert (np.argsort(-dot.logits(u, v)["ctr"]) == np.argsort(-sims)).all()
    w = rng.normal(size=(9, 1)).astype(np.float32)
    prod = Heads("dot+product", {h: [(w, np.zeros(1, np.float32), "linear")] for h in ("ctr", "cvr")})
    assert (np.argsort(-prod.logits(u, v)["ctr"]) != np.argsort(-sims)).any()


def test_feature_spec_roundtrip(dataset, tmp_path):
    dataset.spec.dump(tmp_path / "f.toml")
    assert FeatureSpec.load(tmp_path / "f.toml") == dataset.spec
    assert FeatureSpec.from_list(dataset.spec.to_list()) == dataset.spec


@pytest.mark.parametrize("tower_name", ["user", "item"])
def test_numpy_tower_equals_saved_model_on_real_artifacts(seed_artifacts, tower_name):
    """The hot-path tower reproduces the exported SavedModel, OOV and unseen values included."""
    from recsys.artifacts.version import Version

    version = Version.open(seed_artifacts)
    feats = version.spec.tower(tower_name)
    table = version.table(tower_name)
    cols = table.rows(np.arange(len(table)))
    key = f"{tower_name}_id"
    cols[key] = cols[key].copy()
    cols[key][:3] = ["unknown-a", "unknown-b", ""]  # out-of-vocabulary ids
    for f in feats:
        if f.is_numeric:
            cols[f.name] = cols[f.name].copy()
            cols[f.name][3] = 1e4  # far outside the training range
    expected = version.saved_tower(tower_name)(cols)
    got = version.numpy_tower(tower_name)(cols)
    assert got.shape == expected.shape and np.abs(got - expected).max() <= 1e-5


def _table_reads(encoder, feats) -> tuple[int, int]:
    """(whole-table reads, row gathers) of the embedding tables in one traced training call."""
    import keras

    tables = {tuple(layer.embeddings.shape) for layer in encoder.layers if isinstance(layer, keras.layers.Embedding)}
    cols = {f.name: tf.TensorSpec([None], tf.float32 if f.is_numeric else tf.int32) for f in feats}
    graph = tf.function(lambda c: encoder(c, training=True)).get_concrete_function(cols).graph
    ops = graph.get_operations()
    whole = sum(op.type == "ReadVariableOp" and tuple(op.outputs[0].shape.as_list()) in tables for op in ops)
    gathers = sum(op.type == "ResourceGather" for op in ops)
    assert len(tables) >= 2
    return whole, gathers


def test_embedding_lookups_gather_rows_from_the_variable(dataset):
    # SparseAdam scatters into the tables; TensorFlow then copies a whole table on every dense
    # read of it (copy-on-read), which cost 60 % of a training step at 1M ids. Lookups must
    # gather from the variable, never read it whole.
    import keras

    feats = dataset.spec.tower("item")
    prep = fit_preprocessing(feats, dataset.items)
    n_tables = sum(not f.is_numeric for f in feats)
    assert _table_reads(build_encoder("item", feats, prep), feats) == (0, n_tables)
    # The check sees the difference: Keras' own layer reads each table whole.
    stock = build_encoder("item", feats, prep, embedding=keras.layers.Embedding)
    assert _table_reads(stock, feats)[0] >= n_tables
