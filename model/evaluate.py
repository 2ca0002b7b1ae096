"""Offline evaluation of one artifact version on a dataset, printed as JSON.

Rows: the held-out split of the training data when the dataset fingerprint matches the
version's manifest (the same split is recomputed), otherwise every interaction.
    ctr_auc    p_click vs click, all rows
    cvr_auc    p_conversion vs conversion, clicked rows
    ctcvr_auc  p_click * p_conversion vs conversion, all rows
    recall@K, ndcg@K   held-out clicked items of each user, ranked by the objective over the
                       whole catalogue, minus items the user interacted with in training
"""

from __future__ import annotations

from pathlib import Path

import numpy as np

from artifacts import store
from artifacts.feature_store import FeatureStore, to_columns
from artifacts.features import FeatureSpec
from artifacts.heads import Heads
from artifacts.towers import Tower
from model.data import load_dataset, split
from model.metrics import auc, recall_ndcg_at_k

OBJECTIVES = ("ctcvr", "ctr", "cvr", "similarity")


def rank_scores(heads: Heads, u: np.ndarray, v: np.ndarray, objective: str) -> np.ndarray:
    """u (B, D), v (N, D) -> (B, N) scores under `objective`."""
    if objective == "similarity":
        return u @ v.T
    p_click, p_conv = heads.predict(u[:, None, :], v[None, :, :])
    return {"ctcvr": p_click * p_conv, "ctr": p_click, "cvr": p_conv}[objective]


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(B, N) -> (B, min(k, N)) column indices, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


def evaluate(artifacts: str | Path, data: str | Path, version: str | None = None,
             ks: tuple[int, ...] = (10, 50, 100), objective: str = "ctcvr", batch_users: int = 256) -> dict:
    version_dir = store.resolve(artifacts, version)
    manifest = store.verify(version_dir)
    spec = FeatureSpec.from_list(manifest["features"], where=str(version_dir / store.MANIFEST))
    ds = load_dataset(data)
    cfg = manifest["config"]
    n = len(ds.interactions)
    same_data = ds.fingerprint == manifest["data"]["fingerprint"]
    train_rows, test_rows = split(n, cfg["test_size"], cfg["seed"]) if same_data else (np.empty(0, int), np.arange(n))

    user_tower = Tower(version_dir / "user_tower", spec.tower("user"))
    item_tower = Tower(version_dir / "item_tower", spec.tower("item"))
    heads = Heads.load(version_dir)

    # Pointwise metrics on the evaluation rows.
    test = ds.joined(test_rows)
    u = user_tower.embed(to_columns(test, spec.tower("user")))
    v = item_tower.embed(to_columns(test, spec.tower("item")))
    p_click, p_conv = heads.predict(u, v)
    click, conv = test["click"].to_numpy(), test["conversion"].to_numpy()
    result = {
        "version": manifest["version"],
        "rows": "held-out split" if same_data else "all rows (dataset differs from training data)",
        "n_rows": int(len(test)),
        "ctr_auc": auc(click, p_click),
        "cvr_auc": auc(conv[click == 1], p_conv[click == 1]),
        "ctcvr_auc": auc(conv, p_click * p_conv),
    }

    # Ranking metrics over the whole served catalogue.
    catalogue = FeatureStore.load(version_dir / "items.parquet", spec.tower("item"), "item")
    item_vecs = item_tower.embed(catalogue.rows(np.arange(len(catalogue))))
    positives = test[test["click"] == 1].groupby("user_id")["item_id"].agg(set)
    train = ds.interactions.iloc[train_rows]
    seen = train.groupby("user_id")["item_id"].agg(set)
    users = positives.index.to_numpy()
    user_rows = ds.users.set_index("user_id").loc[users].reset_index()
    user_vecs = user_tower.embed(to_columns(user_rows, spec.tower("user")))
    kmax = max(ks)
    ranked = []
    for start in range(0, len(users), batch_users):
        scores = rank_scores(heads, user_vecs[start:start + batch_users], item_vecs, objective)
        for row, user in enumerate(users[start:start + batch_users]):
            exclude = seen.get(user, set()) - positives[user]
            if exclude:
                cols = [catalogue.position[i] for i in exclude if i in catalogue.position]
                scores[row, cols] = -np.inf
        ranked.append(catalogue.ids[top_k(scores, kmax)])
    ranked = np.concatenate(ranked) if ranked else np.empty((0, kmax), dtype=object)
    result["objective"] = objective
    result["users_with_positives"] = int(len(users))
    result.update(recall_ndcg_at_k(ranked, [positives[u] for u in users], list(ks)))
    return result
