"""CTR and CVR heads in Keras, the training twin of artifacts/heads.py (numpy, online)."""

from __future__ import annotations

import keras

from recsys.artifacts.heads import INPUTS, Heads


class HeadsLayer(keras.layers.Layer):
    """(u (B, D), v (B, D)) -> (ctr_logit (B,), cvr_logit (B,)).

    `inputs` as in artifacts/heads.py: "dot" (the article's Dense(1) on u·v), "dot+product"
    or "full".
    """

    def __init__(self, inputs: str = "dot", hidden: tuple[int, ...] = (), **kwargs):
        super().__init__(**kwargs)
        if inputs not in INPUTS:
            raise ValueError(f"heads inputs must be one of {INPUTS}")
        self.inputs_kind = inputs
        self.hidden = tuple(hidden)
        self.ctr_layers = [keras.layers.Dense(u, activation="relu") for u in self.hidden] + [keras.layers.Dense(1)]
        self.cvr_layers = [keras.layers.Dense(u, activation="relu") for u in self.hidden] + [keras.layers.Dense(1)]

    def call(self, u, v):
        prod = u * v
        x = keras.ops.sum(prod, axis=-1, keepdims=True)
        if self.inputs_kind == "dot+product":
            x = keras.ops.concatenate([x, prod], axis=-1)
        elif self.inputs_kind == "full":
            x = keras.ops.concatenate([x, prod, u, v], axis=-1)
        out = []
        for layers in (self.ctr_layers, self.cvr_layers):
            h = x
            for layer in layers:
                h = layer(h)
            out.append(keras.ops.squeeze(h, -1))
        return tuple(out)

    def export(self) -> Heads:
        def dump(layers):
            return [(layer.kernel.numpy(), layer.bias.numpy(), "relu" if i < len(layers) - 1 else "linear")
                    for i, layer in enumerate(layers)]
        return Heads(self.inputs_kind, {"ctr": dump(self.ctr_layers), "cvr": dump(self.cvr_layers)})
