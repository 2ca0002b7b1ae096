"""CTR and CVR heads in numpy: the online re-scoring operator.

Each head is a small MLP over a user vector u and an item vector v. Its input is
    dot          [u·v]               the article: a monotone function of the similarity
    dot+product  [u·v, u⊙v]          can reorder candidates
    full         [u·v, u⊙v, u, v]    also sees each side alone, so user- and item-level
                                     effects (a user's propensity, an item's price or
                                     quality) need not be squeezed into the interaction

The Keras twin used in training lives in model/training/heads.py; a parity test keeps the two equal.
Numpy because a few hundred candidates cost microseconds here and a TensorFlow call costs a
millisecond.
"""

from __future__ import annotations

import numpy as np

from recsys.artifacts.errors import ArtifactError

INPUTS = ("dot", "dot+product", "full")
ACTIVATIONS = {"linear": lambda x: x, "relu": lambda x: np.maximum(x, 0.0)}
HEADS = ("ctr", "cvr")


def head_input(u: np.ndarray, v: np.ndarray, inputs: str) -> np.ndarray:
    """u (..., D), v (..., D), broadcastable -> (..., 1), (..., 1 + D) or (..., 1 + 3D)."""
    prod = u * v
    dot = prod.sum(axis=-1, keepdims=True)
    if inputs == "dot":
        return dot
    if inputs == "dot+product":
        return np.concatenate([dot, prod], axis=-1)
    u, v = np.broadcast_arrays(u, v)
    return np.concatenate([dot, prod, u, v], axis=-1)


def sigmoid(x: np.ndarray) -> np.ndarray:
    return 0.5 * (np.tanh(0.5 * x) + 1.0)  # overflow-free form


class Heads:
    """layers[head] = [(kernel (in, out), bias (out,), activation), ...], last out = 1."""

    def __init__(self, inputs: str, layers: dict[str, list[tuple[np.ndarray, np.ndarray, str]]]):
        if inputs not in INPUTS:
            raise ArtifactError(f"heads: unknown inputs {inputs!r}")
        self.inputs = inputs
        self.layers = layers

    def logits(self, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        """u (..., D), v (..., D), broadcastable -> {"ctr": (...), "cvr": (...)} logits."""
        x0 = head_input(np.asarray(u, np.float32), np.asarray(v, np.float32), self.inputs)
        out = {}
        for head in HEADS:
            x = x0
            for kernel, bias, act in self.layers[head]:
                x = ACTIVATIONS[act](x @ kernel + bias)
            out[head] = x[..., 0]
        return out

    def predict(self, u: np.ndarray, v: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(p_click, p_conversion-given-click), shapes as in `logits`."""
        lg = self.logits(u, v)
        return sigmoid(lg["ctr"]), sigmoid(lg["cvr"])

    def to_arrays(self) -> tuple[dict, dict[str, np.ndarray]]:
        """(config, arrays): what artifacts/version.py writes and `from_arrays` reads back."""
        arrays, config = {}, {"inputs": self.inputs, "heads": {}}
        for head in HEADS:
            acts = []
            for i, (kernel, bias, act) in enumerate(self.layers[head]):
                arrays[f"{head}_{i}_kernel"] = kernel
                arrays[f"{head}_{i}_bias"] = bias
                acts.append(act)
            config["heads"][head] = acts
        return config, arrays

    @classmethod
    def from_arrays(cls, config: dict, arrays: dict[str, np.ndarray]) -> Heads:
        layers = {head: [(arrays[f"{head}_{i}_kernel"], arrays[f"{head}_{i}_bias"], act) for i, act in enumerate(acts)]
                  for head, acts in config["heads"].items()}
        return cls(config["inputs"], layers)
