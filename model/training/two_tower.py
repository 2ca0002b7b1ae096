"""The trained model: a user encoder, an item encoder and the CTR/CVR heads on their embeddings."""

from __future__ import annotations

import keras
import numpy as np

from recsys.artifacts.features import FeatureSpec
from recsys.model.training.config import TrainConfig
from recsys.model.training.heads import HeadsLayer
from recsys.model.training.inputs import TrainingData, gather, user_columns
from recsys.model.training.optim import SparseAdam
from recsys.model.training.towers import build_encoder, history_table


class TwoTower(keras.Model):
    """Encoded user and item columns -> (u (B, D), v (B, D), ctr_logit (B,), cvr_logit (B,))."""

    def __init__(self, user_encoder: keras.Model, item_encoder: keras.Model, heads: HeadsLayer, **kwargs):
        super().__init__(**kwargs)
        self.user_encoder, self.item_encoder, self.heads = user_encoder, item_encoder, heads

    def call(self, user_cols, item_cols, training=False):
        u = self.user_encoder(user_cols, training=training)
        v = self.item_encoder(item_cols, training=training)
        ctr, cvr = self.heads(u, v)
        return u, v, ctr, cvr


def build_model(spec: FeatureSpec, data: TrainingData, config: TrainConfig) -> TwoTower:
    """A TwoTower with its weights created (initialised from Keras' global seed)."""
    encoder_args = dict(hidden=config.hidden, output_activation=config.output_activation,
                        l2_normalize=config.l2_normalize)
    item_encoder = build_encoder("item", spec.tower("item"), data.prep, **encoder_args)
    history = None
    if config.history_length:
        dim = next(f.dim for f in spec.tower("item") if f.name == "item_id")
        history = (item_encoder.get_layer("item_id_embedding") if config.history_table == "shared"
                   else history_table(data.prep, dim))
    model = TwoTower(build_encoder("user", spec.tower("user"), data.prep, history=history, **encoder_args),
                     item_encoder, HeadsLayer(config.head_inputs, config.head_hidden))
    model(user_columns(data, [0], np.full((1, 1), -1, np.int32)), gather(data.items, [0]))  # build the weights
    return model


def make_optimizer(model: TwoTower, config: TrainConfig) -> SparseAdam:
    """SparseAdam over the model's weights, with Adagrad for the embedding tables if configured."""
    tables = {id(w) for encoder in (model.user_encoder, model.item_encoder) for layer in encoder.layers
              if isinstance(layer, keras.layers.Embedding) for w in layer.trainable_weights}  # history's too
    return SparseAdam(model.trainable_variables, config.learning_rate,
                      adagrad_lr=config.embedding_learning_rate if config.embedding_optimizer == "adagrad"
                      else None, tables=[id(w) in tables for w in model.trainable_variables])
