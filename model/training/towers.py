"""The two towers as Keras models that take raw feature columns.

Preprocessing is part of each exported tower, so the graph takes what the data files hold:
    ids, categories  StringLookup (vocabulary fitted on training data, 1 OOV bucket at index 0)
                     -> Embedding(vocab + 1, embedding_dim)
    numerics         Normalization (mean/variance fitted on training data)
    history (user)   item ids (B, N), "" padding -> StringLookup (the item_id vocabulary)
                     -> an item-id Embedding -> masked mean (B, dim)
then concatenation and an MLP (the article: Dense 64 relu -> Dense 32 relu).
"""

from __future__ import annotations

import keras
import numpy as np
import pandas as pd
import tensorflow as tf

from recsys.artifacts.features import Feature
from recsys.artifacts.numpy_tower import NumpyTower


def fit_preprocessing(features: tuple[Feature, ...], frame: pd.DataFrame) -> dict[str, dict]:
    """Vocabularies and standardisation statistics from the rows of `frame`."""
    prep = {}
    for f in features:
        values = frame[f.name]
        if f.is_numeric:
            x = values.to_numpy(np.float64)
            prep[f.name] = {"mean": float(x.mean()), "variance": float(x.var())}
        else:
            prep[f.name] = {"vocabulary": sorted(values.astype(str).unique().tolist())}
    return prep


def encode(frame: pd.DataFrame, features: tuple[Feature, ...], prep: dict[str, dict]) -> dict[str, np.ndarray]:
    """Raw columns -> encoder inputs, exactly as the exported StringLookup maps them:
    vocabulary[i] -> i + 1, anything else -> 0 (the OOV bucket); numerics as float32."""
    out = {}
    for f in features:
        if f.is_numeric:
            out[f.name] = frame[f.name].to_numpy(np.float32)
        else:
            codes = pd.Categorical(frame[f.name].astype(str), categories=prep[f.name]["vocabulary"]).codes
            out[f.name] = (codes.astype(np.int32) + 1)
    return out


HISTORY = "history"  # the user tower's history input column


class Embedding(keras.layers.Embedding):
    """keras.layers.Embedding whose lookup reads only the rows it gathers: (B, ...) int -> (B, ..., dim).

    Keras reads the whole table and then gathers from the copy it read. Once SparseAdam has
    updated a table in place (a scatter), TensorFlow copies the whole variable on every such
    read (its "copy-on-read" mode for variables with sparse writers): at 1M users and items,
    ~200 MB a step, 60 % of a training step. A gather on the variable itself does not copy.
    """

    def call(self, inputs):
        if inputs.dtype not in ("int32", "int64"):
            inputs = keras.ops.cast(inputs, "int32")
        return keras.ops.cast(tf.gather(self.embeddings.value, inputs), self.compute_dtype)


def history_table(prep: dict[str, dict], dim: int) -> Embedding:
    """An item-id table of the user tower's own for its history (row 0: out of vocabulary)."""
    return Embedding(len(prep["item_id"]["vocabulary"]) + 1, dim, name="history_embedding")


def pool_history(codes, table: keras.layers.Embedding):
    """Masked mean (B, dim) of `table` over item codes (B, N), -1 = padding (a user without
    history gets zeros)."""
    mask = keras.ops.expand_dims(keras.ops.cast(codes >= 0, "float32"), -1)
    vectors = table(keras.ops.maximum(codes, 0)) * mask
    return keras.ops.sum(vectors, axis=1) / keras.ops.maximum(keras.ops.sum(mask, axis=1), 1.0)


def build_encoder(name: str, features: tuple[Feature, ...], prep: dict[str, dict],
                  hidden: tuple[int, ...] = (64, 32), output_activation: str = "relu",
                  l2_normalize: bool = False, history: keras.layers.Embedding | None = None,
                  embedding: type[keras.layers.Embedding] = Embedding) -> keras.Model:
    """Encoded columns {name: (B,) int32 index | float32} -> embedding (B, hidden[-1]).

    Training runs on these integer inputs (lookups done once, sparse embedding gradients);
    `build_tower` puts the string lookups in front for export. With a `history` table the
    encoder also takes "history" (B, N) int32 item codes, pooled by `pool_history`. `embedding`:
    the tables' layer (Keras' own for a plain-Keras baseline).
    """
    inputs, parts = {}, []
    for f in features:
        if f.is_numeric:
            inputs[f.name] = keras.Input(shape=(), dtype="float32", name=f.name)
            x = keras.ops.expand_dims(inputs[f.name], -1)
            parts.append(keras.layers.Normalization(mean=prep[f.name]["mean"], variance=prep[f.name]["variance"],
                                                    name=f"{f.name}_norm")(x))
        else:
            inputs[f.name] = keras.Input(shape=(), dtype="int32", name=f.name)
            vocab_size = len(prep[f.name]["vocabulary"]) + 1
            parts.append(embedding(vocab_size, f.dim, name=f"{f.name}_embedding")(inputs[f.name]))
    if history is not None:
        inputs[HISTORY] = keras.Input(shape=(None,), dtype="int32", name=HISTORY)
        parts.append(pool_history(inputs[HISTORY], history))
    x = parts[0] if len(parts) == 1 else keras.layers.Concatenate(name="features")(parts)
    for i, units in enumerate(hidden):
        last = i == len(hidden) - 1
        x = keras.layers.Dense(units, activation=output_activation if last else "relu", name=f"dense_{i}")(x)
    if l2_normalize:
        x = keras.layers.UnitNormalization(name="l2_normalize")(x)
    return keras.Model(inputs, x, name=f"{name}_encoder")


def build_tower(name: str, features: tuple[Feature, ...], prep: dict[str, dict], encoder: keras.Model) -> keras.Model:
    """Raw columns {name: (B,) string | float32} -> StringLookup -> `encoder` -> (B, D)."""
    inputs, encoded = {}, {}
    for f in features:
        if f.is_numeric:
            inputs[f.name] = encoded[f.name] = keras.Input(shape=(), dtype="float32", name=f.name)
        else:
            inputs[f.name] = keras.Input(shape=(), dtype="string", name=f.name)
            lookup = keras.layers.StringLookup(vocabulary=prep[f.name]["vocabulary"], num_oov_indices=1,
                                               mask_token=None, output_mode="int", name=f"{f.name}_lookup")
            encoded[f.name] = keras.ops.cast(lookup(inputs[f.name]), "int32")
    if HISTORY in encoder.input:
        inputs[HISTORY] = keras.Input(shape=(None,), dtype="string", name=HISTORY)
        lookup = keras.layers.StringLookup(vocabulary=prep["item_id"]["vocabulary"], num_oov_indices=1,
                                           mask_token=None, output_mode="int", name="history_lookup")
        codes = keras.ops.cast(lookup(inputs[HISTORY]), "int32")
        encoded[HISTORY] = keras.ops.where(keras.ops.equal(inputs[HISTORY], ""), -1, codes)  # "" pads
    return keras.Model(inputs, encoder(encoded), name=name)


def to_numpy_tower(tower: keras.Model, features: tuple[Feature, ...], prep: dict[str, dict],
                   l2_normalize: bool) -> NumpyTower:
    """The same function as `tower` (an encoder), as weights for artifacts/numpy_tower.py."""
    arrays, vocabularies = {}, {}
    for f in features:
        if f.is_numeric:
            arrays[f"{f.name}_mean"] = np.float32(prep[f.name]["mean"])
            arrays[f"{f.name}_variance"] = np.float32(prep[f.name]["variance"])
        else:
            vocabularies[f.name] = prep[f.name]["vocabulary"]
            arrays[f"{f.name}_embedding"] = tower.get_layer(f"{f.name}_embedding").embeddings.numpy()
    if HISTORY in tower.input:  # the pooled table: the user tower's own, or the item tower's id table
        table = next(layer for layer in tower.layers if layer.name in ("history_embedding", "item_id_embedding"))
        vocabularies[HISTORY] = prep["item_id"]["vocabulary"]
        arrays["history_embedding"] = table.embeddings.numpy()
    activations, i = [], 0
    while any(layer.name == f"dense_{i}" for layer in tower.layers):
        dense = tower.get_layer(f"dense_{i}")
        arrays[f"dense_{i}_kernel"], arrays[f"dense_{i}_bias"] = dense.kernel.numpy(), dense.bias.numpy()
        activations.append(dense.get_config()["activation"])
        i += 1
    config = {"features": [{"name": f.name, "kind": f.kind} for f in features], "vocabularies": vocabularies,
              "activations": activations, "l2_normalize": l2_normalize, "history": HISTORY in tower.input}
    return NumpyTower(config, arrays)
