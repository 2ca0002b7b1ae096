"""Item-kNN against similarities worked out by hand on a tiny click log."""

import numpy as np
import pandas as pd

from recsys.model.evaluation.knn import ItemKNNScorer

# u1 clicks A, B (A twice); u2 A, B, C; u3 C, D. Non-clicks and E (never clicked) count for nothing.
LOG = pd.DataFrame([("u1", "A", 1), ("u1", "A", 1), ("u1", "B", 1), ("u1", "D", 0), ("u2", "A", 1), ("u2", "B", 1),
                    ("u2", "C", 1), ("u3", "C", 1), ("u3", "D", 1), ("u3", "E", 0)],
                   columns=["user_id", "item_id", "click"])
CATALOGUE = np.array(["A", "B", "C", "D", "E"])


def test_scores_are_summed_cosine_similarities_to_the_users_clicks():
    # Clickers: A {u1,u2}, B {u1,u2}, C {u2,u3}, D {u3}. Cosine = shared clickers / sqrt(n_i n_j):
    # AB 2/2 = 1, AC 1/2, BC 1/2, CD 1/sqrt(2), AD = BD = 0; an item is no neighbour of itself.
    cd = 1 / np.sqrt(2)
    expected = {"u1": [1.0, 1.0, 0.5 + 0.5, 0.0, 0.0],  # A <- B, B <- A, C <- A + B
                "u2": [1 + 0.5, 1 + 0.5, 0.5 + 0.5, cd, 0.0],
                "u3": [0.5, 0.5, cd, cd, 0.0]}
    knn = ItemKNNScorer(LOG, CATALOGUE)
    got = knn.scores(np.array(["u1", "u2", "u3"]))
    assert np.allclose(got, np.array(list(expected.values())))


def test_ranks_by_score_ties_going_to_the_more_clicked_item():
    knn = ItemKNNScorer(LOG, CATALOGUE)
    ranked = np.argsort(-knn.rank(np.array(["u3", "nobody"]), "ctcvr"), axis=1, kind="stable")
    # u3: C and D tie at 1/sqrt(2), C has more clickers; then A and B at 0.5; E last.
    assert CATALOGUE[ranked[0]].tolist() == ["C", "D", "A", "B", "E"]
    # A user without training clicks: the popularity order (A, B, C have 2 clickers, D 1, E none).
    assert CATALOGUE[ranked[1]].tolist() == ["A", "B", "C", "D", "E"]
