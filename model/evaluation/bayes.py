"""The best a learner could do on a simulated data set: a reference between model and oracle.

The oracle knows every user's hidden taste; no learner can, from a few dozen exposures. The
`bayes` reference knows everything except what each user's rows must reveal: the world's
equations, every item's parameters, and the prior each user's features imply (taste
centre, price sensitivity, propensity; model/data/world.py). It predicts the posterior mean of
p_click and p_conversion given the user's training rows, by importance sampling from that
prior (the same `samples` noise draws for every user; accurate while each user's rows are
few enough for the effective sample size to stay in the hundreds, see `diagnostics`):

    weight_s ∝ Π_train rows p_click_s^click (1 - p_click_s)^(1 - click)
                          × [p_conv_s^conversion (1 - p_conv_s)^(1 - conversion)]^click
    p_click = Σ_s weight_s p_click_s          p_conversion = Σ_s weight_s p_click_s p_conv_s / p_click

A trained model also has to learn the items, so `bayes` bounds it from above; where the
oracle is out of reach even for `bayes`, the data, not the model, sets the gap.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from recsys.artifacts.heads import sigmoid
from recsys.model.data.world import CONV_BIAS_NOISE, DIM, PRICE_SENS_NOISE, World, _indices, _unit


def available(world: World) -> bool:
    return world.user_taste_centre is not None


class BayesPredictor:
    def __init__(self, world: World, train: pd.DataFrame, samples: int = 2000, seed: int = 0):
        """train: the training rows (user_id, item_id, click, conversion)."""
        if not available(world):
            raise ValueError("this world.npz has no user priors (simulate it again)")
        self.world = world
        rng = np.random.default_rng(seed)
        self.noise = rng.standard_normal((samples, DIM)).astype(np.float32) / np.sqrt(DIM)
        self.sens_noise = np.exp(PRICE_SENS_NOISE * rng.standard_normal(samples))
        self.conv_noise = CONV_BIAS_NOISE * rng.standard_normal(samples)
        u = _indices(train["user_id"].to_numpy(), world.n_users, "user")
        order = np.argsort(u, kind="stable")
        self.train_u = u[order]
        self.train_i = _indices(train["item_id"].to_numpy(), world.n_items, "item")[order]
        self.train_click = train["click"].to_numpy(np.float64)[order]
        self.train_conv = train["conversion"].to_numpy(np.float64)[order]
        self.ess: list[float] = []  # effective sample size of each user's weights

    def diagnostics(self) -> dict:
        """Effective sample sizes: the estimate is sound while they stay in the hundreds."""
        ess = np.asarray(self.ess) if self.ess else np.zeros(1)
        return {"samples": len(self.noise), "ess_median": float(np.median(ess)),
                "ess_p5": float(np.percentile(ess, 5))}

    def _probs(self, u: int, items: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(samples, n) p_click and p_conversion of user row u under each prior draw."""
        w = self.world
        aff = _unit(w.user_taste_centre[u] + self.noise) @ w.item_taste[items].T
        sens = w.user_price_sens_base[u] * self.sens_noise
        bias = w.user_conv_bias_base[u] + self.conv_noise
        return sigmoid(w.click_logit(aff, items)), sigmoid(w.conv_logit(aff, items, bias[:, None], sens[:, None]))

    def _weights(self, u: int) -> np.ndarray:
        lo, hi = np.searchsorted(self.train_u, [u, u + 1])
        n = len(self.noise)
        if lo == hi:
            return np.full(n, 1.0 / n)
        pc, pv = self._probs(u, self.train_i[lo:hi])
        click, conv = self.train_click[lo:hi], self.train_conv[lo:hi]
        eps = 1e-12
        ll = (click * np.log(pc + eps) + (1 - click) * np.log(1 - pc + eps)
              + click * (conv * np.log(pv + eps) + (1 - conv) * np.log(1 - pv + eps))).sum(axis=1)
        w = np.exp(ll - ll.max())
        w /= w.sum()
        self.ess.append(float(1.0 / np.square(w).sum()))
        return w

    def predict(self, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
        """Posterior-mean (p_click, p_conversion) of each (user, item) pair (ids 1..N)."""
        u = _indices(user_ids, self.world.n_users, "user")
        i = _indices(item_ids, self.world.n_items, "item")
        p_click, p_conv = np.empty(len(u)), np.empty(len(u))
        order = np.argsort(u, kind="stable")
        bounds = np.flatnonzero(np.diff(u[order])) + 1
        for rows in np.split(order, bounds):
            if not len(rows):
                continue
            w = self._weights(int(u[rows[0]]))
            pc, pv = self._probs(int(u[rows[0]]), i[rows])
            p_click[rows] = w @ pc
            p_conv[rows] = (w @ (pc * pv)) / np.maximum(p_click[rows], 1e-12)
        return p_click, p_conv
