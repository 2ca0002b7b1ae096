"""Ranking and classification metrics in numpy, shared by training, evaluation and the index."""

from __future__ import annotations

import numpy as np


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
    over users that have at least one positive.
    """
    out = {}
    users = [u for u, pos in enumerate(positives) if pos]
    discounts = 1.0 / np.log2(np.arange(2, max(ks) + 2))
    for k in ks:
        recalls, ndcgs = [], []
        for u in users:
            pos = positives[u]
            hits = np.fromiter((item in pos for item in ranked[u, :k]), dtype=bool, count=min(k, ranked.shape[1]))
            recalls.append(hits.sum() / len(pos))
            ideal = discounts[: min(len(pos), k)].sum()
            ndcgs.append((discounts[: hits.size][hits]).sum() / ideal)
        out[f"recall@{k}"] = float(np.mean(recalls)) if users else None
        out[f"ndcg@{k}"] = float(np.mean(ndcgs)) if users else None
    return out


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
