"""Item-kNN, the classic collaborative-filtering baseline: items are alike when the same users click them.

    similarity(i, j) = |users who clicked i and j| / sqrt(|users who clicked i| x |users who clicked j|)
                       (cosine of the items' binary click columns), 0 for i = j
    score(u, j)      = sum of similarity(i, j) over the items i u clicked in training

Never materialises the item x item matrix (9.7k MovieLens items would make it ~100M entries):
a batch of users' scores is ((X_B D) X^T) X D, with X the sparse binary user x item click
matrix and D = diag(1 / sqrt(item clicks)), minus the self-similarity of each clicked item.
Users without training clicks score 0 everywhere and get the popularity order.
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from scipy import sparse


class ItemKNNScorer:
    """Ranks the catalogue by summed cosine similarity to each user's training clicks."""

    def __init__(self, train: pd.DataFrame, catalogue_ids: np.ndarray):
        clicks = train.loc[train["click"] == 1, ["user_id", "item_id"]].drop_duplicates()
        items = pd.Index(catalogue_ids)
        col = items.get_indexer(clicks["item_id"])
        clicks, col = clicks[col >= 0], col[col >= 0]  # items the catalogue lacks cannot be ranked
        self.users = pd.Index(clicks["user_id"].unique())
        row = self.users.get_indexer(clicks["user_id"])
        self.x = sparse.csr_matrix((np.ones(len(col)), (row, col)), shape=(len(self.users), len(items)))
        counts = np.asarray(self.x.sum(axis=0)).ravel()
        self.inv_norm = np.where(counts > 0, 1.0 / np.sqrt(np.maximum(counts, 1)), 0.0)
        self.xt = self.x.T.tocsr()
        # Ties (every score of a user without clicks) go to the more clicked item: far below any similarity.
        self.tiebreak = 1e-9 * counts / max(counts.max(initial=0), 1)

    def scores(self, user_ids: np.ndarray) -> np.ndarray:
        """(B, N) summed similarities to each user's training clicks (0 for a user without any)."""
        pos = self.users.get_indexer(pd.Index(user_ids))
        known = pos >= 0
        mine = sparse.csr_matrix((len(pos), self.x.shape[1]))
        if known.any():
            picker = sparse.csr_matrix((np.ones(known.sum()), (np.flatnonzero(known), pos[known])),
                                       shape=(len(pos), self.x.shape[0]))
            mine = (picker @ self.x).tocsr()  # (B, N) the users' clicks
        co_users = (mine @ sparse.diags(self.inv_norm)) @ self.xt  # (B, U): weighted clicks shared with each user
        out = (self.xt @ co_users.T.toarray()).T * self.inv_norm[None, :]  # sparse @ dense: (B, N)
        # Each clicked item's similarity to itself (1) is not a neighbour's vote.
        return out - mine.toarray()

    def rank(self, user_ids: np.ndarray, objective: str) -> np.ndarray:
        return self.scores(user_ids) + self.tiebreak[None, :]
