"""Ranking and classification metrics in numpy, shared by training, evaluation and the index."""

from __future__ import annotations

import numpy as np
import pandas as pd


def auc(labels: np.ndarray, scores: np.ndarray) -> float | None:
    """ROC AUC via the rank-sum statistic, ties averaged; None when one class is absent."""
    labels = np.asarray(labels).astype(bool)
    scores = np.asarray(scores, dtype=np.float64)
    n_pos = int(labels.sum())
    n_neg = labels.size - n_pos
    if n_pos == 0 or n_neg == 0:
        return None
    order = np.argsort(scores, kind="mergesort")
    sorted_scores = scores[order]
    ranks = np.empty(labels.size, dtype=np.float64)
    # Average rank within each run of equal scores.
    starts = np.flatnonzero(np.r_[True, sorted_scores[1:] != sorted_scores[:-1]])
    ends = np.r_[starts[1:], labels.size]
    avg = (starts + ends + 1) / 2.0
    ranks[order] = np.repeat(avg, ends - starts)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def recall_ndcg_at_k(ranked: np.ndarray, positives: list[set], ks: list[int]) -> dict[str, float]:
    """ranked (U, >= max(ks)) item ids best first; positives[u] = held-out items of user u.

    recall@K = |top-K ∩ positives| / |positives|, NDCG@K with binary gains; both averaged
    over users that have at least one positive. One (U, K) hit matrix, no loop over users.
    """
    ranked = np.asarray(ranked)
    users = np.array([u for u, pos in enumerate(positives) if pos], dtype=np.int64)
    if not len(users):
        return {m: None for k in ks for m in (f"recall@{k}", f"ndcg@{k}")}
    width = min(max(ks), ranked.shape[1])
    hits = _hits(ranked[users, :width], [positives[u] for u in users])   # (U', width)
    n_pos = np.array([len(positives[u]) for u in users])
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    ideal_cum = np.cumsum(discounts)                                      # ideal DCG for 1..max(ks) positives
    out = {}
    for k in ks:
        h = hits[:, :k]
        out[f"recall@{k}"] = float(np.mean(h.sum(axis=1) / n_pos))
        ideal = ideal_cum[np.minimum(n_pos, k) - 1]
        out[f"ndcg@{k}"] = float(np.mean((h * discounts[:h.shape[1]]).sum(axis=1) / ideal))
    return out


def _hits(ranked: np.ndarray, positives: list[set]) -> np.ndarray:
    """(U, W) bool: ranked[u, j] is one of positives[u]. Ids are coded to integers once, then
    (user, item) pairs are matched as single int64 keys."""
    pos_user = np.repeat(np.arange(len(positives)), [len(p) for p in positives])
    pos_items = np.array([i for p in positives for i in p], dtype=object)
    codes, uniques = pd.factorize(np.concatenate([pos_items, ranked.ravel().astype(object)]))
    n_codes = max(len(uniques), 1) + 1  # code -1 (a missing id) becomes 0 after the shift
    pos_keys = pos_user * n_codes + codes[:len(pos_items)] + 1
    ranked_keys = np.arange(len(positives))[:, None] * n_codes + codes[len(pos_items):].reshape(ranked.shape) + 1
    return np.isin(ranked_keys, pos_keys)


def ctr_cvr_aucs(click: np.ndarray, conversion: np.ndarray, p_click: np.ndarray,
                 p_conversion: np.ndarray) -> dict[str, float | None]:
    """The three held-out AUCs from (N,) labels and probabilities.

    ctr_auc    p_click vs click, every row
    cvr_auc    p_conversion vs conversion, clicked rows
    ctcvr_auc  p_click * p_conversion vs conversion, every row
    """
    clicked = np.asarray(click) == 1
    return {"ctr_auc": auc(click, p_click), "cvr_auc": auc(conversion[clicked], p_conversion[clicked]),
            "ctcvr_auc": auc(conversion, p_click * p_conversion)}


def recall_at_k(found: np.ndarray, exact: np.ndarray, k: int | None = None) -> float:
    """Mean share of each query's exact top k that an approximate search found in its top k.

    found (Q, >= k), exact (Q, >= k) item ids best first (-1 for a missing hit); k defaults to
    exact's width, and a row with fewer than k exact ids is scored against the ids it has.
    """
    k = exact.shape[1] if k is None else k
    return float(np.mean([len(set(a[:k]) & set(e[:k])) / min(k, len(e))
                          for a, e in zip(np.asarray(found).tolist(), np.asarray(exact).tolist())]))
