"""True NDCG (gains = the true pCTCVR) at several K from one ranking, against a direct computation."""

from types import SimpleNamespace

import numpy as np
import pandas as pd

from recsys.model.evaluation.evaluate import _ranking_metrics, ndcg_against_gains, ndcg_at_ks, top_k


def reference(cols, gains, k):
    """NDCG@k user by user, the textbook way."""
    out = []
    for row, g in zip(cols, gains):
        k_ = min(k, len(g))
        disc = 1 / np.log2(np.arange(2, k_ + 2))
        out.append((g[row[:k_]] * disc).sum() / (np.sort(g)[::-1][:k_] * disc).sum())
    return np.mean(out)


def test_every_k_matches_the_textbook_ndcg():
    rng = np.random.default_rng(0)
    gains = rng.uniform(size=(6, 40))
    cols = top_k(gains + rng.normal(scale=0.3, size=gains.shape), 40)
    got = ndcg_at_ks(cols, gains, (1, 5, 10, 50))  # 50 > 40 items: the whole catalogue
    for k, value in got.items():
        assert np.isclose(value, reference(cols, gains, k)), k
    assert np.isclose(ndcg_against_gains(cols, gains, 10), got[10])
    assert ndcg_at_ks(top_k(gains, 40), gains, (1, 10))[10] == 1.0  # the true order is ideal


class World:
    """A made-up world: a fixed table of true probabilities by (user, item)."""

    def __init__(self, users, items, seed=0):
        rng = np.random.default_rng(seed)
        self.u = {u: i for i, u in enumerate(users)}
        self.i = {x: i for i, x in enumerate(items)}
        self.ctr, self.ctcvr = rng.uniform(size=(2, len(users), len(items)))

    def p_click(self, users, items):
        return self.ctr[[self.u[u] for u in users], [self.i[i] for i in items]]

    def p_ctcvr(self, users, items):
        return self.ctcvr[[self.u[u] for u in users], [self.i[i] for i in items]]


class Scorer:
    def __init__(self, scores):
        self.scores = scores

    def rank(self, users, objective):
        return self.scores[objective][[int(u) for u in users]]


def test_ranking_metrics_report_true_ndcg_at_every_k_and_50():
    users, items = np.array(["0", "1", "2"]), np.array([f"i{j}" for j in range(80)])
    world = World(users, items)
    rng = np.random.default_rng(1)
    scores = {"ctcvr": world.ctcvr + rng.normal(scale=0.2, size=world.ctcvr.shape), "ctr": world.ctr}
    catalogue = SimpleNamespace(ids=items, position=pd.Series(np.arange(80), index=items))
    positives = pd.Series({u: {"i1"} for u in users})
    out = _ranking_metrics(Scorer(scores), users, positives, {}, catalogue, (1, 10), "ctcvr", world, batch=2)
    keys = sorted(k for k in out if k.startswith("true_ndcg"))
    assert keys == sorted(f"true_ndcg@{k}_by_{o}" for k in (1, 10, 50) for o in ("ctcvr", "ctr"))
    for k in (1, 10, 50):
        for obj in ("ctcvr", "ctr"):
            assert np.isclose(out[f"true_ndcg@{k}_by_{obj}"], reference(top_k(scores[obj], 80), world.ctcvr, k))
