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
        # Both heads' first layers side by side, kernel (in, H_ctr + H_cvr) and bias: one product for both.
        self._kernel = np.concatenate([layers[h][0][0] for h in HEADS], axis=1).astype(np.float32)
        self._bias = np.concatenate([layers[h][0][1] for h in HEADS]).astype(np.float32)

    def logits(self, u: np.ndarray, v: np.ndarray) -> dict[str, np.ndarray]:
        """u (..., D), v (..., D), broadcastable -> {"ctr": (...), "cvr": (...)} logits."""
        u, v = np.asarray(u, np.float32), np.asarray(v, np.float32)
        if u.ndim == 3 and u.shape[1] == 1 and v.ndim == 3 and v.shape[0] in (1, u.shape[0]):
            first = self._first_layer_per_user(u[:, 0, :], v)
        else:
            first = head_input(u, v, self.inputs) @ self._kernel + self._bias
        out, start = {}, 0
        for head in HEADS:
            (kernel, _, act), *rest = self.layers[head]
            x = ACTIVATIONS[act](first[..., start:start + kernel.shape[1]])
            start += kernel.shape[1]
            for kernel, bias, act in rest:
                x = ACTIVATIONS[act](x @ kernel + bias)
            out[head] = x[..., 0]
        return out

    def _first_layer_per_user(self, u: np.ndarray, v: np.ndarray) -> np.ndarray:
        """Pre-activations (B, K, H) of both first layers for users u (B, D) and their candidates
        v (B or 1, K, D), without building the (B, K, 1 + 3D) inputs.

        The first layer is linear in v for a fixed u: with the kernel's rows split as
        [dot (1), product (D), u (D), v (D)], z = v @ A_u + c_u where
            A_u = u[:, None] * (k_dot + K_product) + K_v    (D, H)
            c_u = u @ K_u + bias                            (H,)
        one (D, H) matrix per user, so each candidate costs a D x H product instead of (1 + 3D) x H.
        """
        kernel, bias, d = self._kernel, self._bias, u.shape[1]
        k_dot = kernel[0]
        k_prod = kernel[1:1 + d] if self.inputs != "dot" else 0.0
        a = u[:, :, None] * (k_dot[None, None, :] + k_prod)                  # (B, D, H)
        c = np.broadcast_to(bias, (len(u), len(bias)))
        if self.inputs == "full":
            a = a + kernel[1 + 2 * d:][None]
            c = c + u @ kernel[1 + d:1 + 2 * d]
        return np.matmul(v, a) + c[:, None, :]

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
