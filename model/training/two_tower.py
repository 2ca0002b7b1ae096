"""The trained model: a user encoder, an item encoder and the CTR/CVR heads on their embeddings."""

from __future__ import annotations

import keras

from recsys.artifacts.features import FeatureSpec
from recsys.model.training.config import TrainConfig
from recsys.model.training.heads import HeadsLayer
from recsys.model.training.inputs import TrainingData, gather
from recsys.model.training.optim import SparseAdam
from recsys.model.training.towers import build_encoder


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
    model = TwoTower(build_encoder("user", spec.tower("user"), data.prep, **encoder_args),
                     build_encoder("item", spec.tower("item"), data.prep, **encoder_args),
                     HeadsLayer(config.head_inputs, config.head_hidden))
    model(gather(data.users, [0]), gather(data.items, [0]))  # build the weights
    return model


def make_optimizer(model: TwoTower, config: TrainConfig) -> SparseAdam:
    """SparseAdam over the model's weights, with Adagrad for the embedding tables if configured."""
    tables = {id(w) for encoder in (model.user_encoder, model.item_encoder) for layer in encoder.layers
              if isinstance(layer, keras.layers.Embedding) for w in layer.trainable_weights}
    return SparseAdam(model.trainable_variables, config.learning_rate,
                      adagrad_lr=config.embedding_learning_rate if config.embedding_optimizer == "adagrad"
                      else None, tables=[id(w) in tables for w in model.trainable_variables])
