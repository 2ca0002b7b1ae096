"""Freshness: does a recommender follow what a user is after right now?

On a simulated world (model/data/world.py) each sampled user starts a new session at the end of
the period with an intent drawn as the simulator draws them (1 or 2 categories near the user's
taste). The user's first `clicks` clicks of that session are drawn from the truth: distinct items,
each with probability proportional to its true click probability at that moment with that intent,
over the whole catalogue. Then

    with_recent_items     share of the true top-k in the served top-k, recent_items = those clicks
    without_recent_items  the same, the request without them
    intent_blind          the share of the true top-k in the true top-k without the intent: what the
                          best recommender ignoring the session achieves
    random                k / (catalogue - clicks): what a random list achieves on average

"True top-k": the catalogue by the true pCTR × pCVR (`objective="ctcvr"`, the service's default
order) or pCTR (`"ctr"`) at that moment with the intent. The session's clicked items are left out
of both lists (the recommender is asked for k + clicks items and its clicks are dropped).

`recommend(user_id, recent_items or None, k) -> item ids` is any recommender;
`version_recommender` builds one over a trained version as the service serves it (the numpy user
tower, the version's stored histories with recent_items appended, the index's candidates
re-scored by the heads), without importing the service.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass

import numpy as np

from recsys.artifacts.errors import DataError
from recsys.artifacts.user_history import COLUMN as HISTORY
from recsys.artifacts.user_history import history_column
from recsys.artifacts.version import Version
from recsys.model.data.world import World
from recsys.model.evaluation.evaluate import top_k

Recommend = Callable[[str, Sequence[str] | None, int], Sequence]
CHUNK = 256  # users per truth matrix


@dataclass
class Sessions:
    """New sessions at `at`: user rows (B,), intents (B, MAX_INTENT) category codes (-1: none), the
    first clicks (B, clicks) item rows."""
    users: np.ndarray
    intents: np.ndarray
    clicks: np.ndarray
    at: float


def draw_sessions(world: World, n_users: int = 500, clicks: int = 3, seed: int = 0,
                  users: np.ndarray | None = None) -> Sessions:
    """A new session at the end of the period for `n_users` users drawn uniformly (or user ids `users`)."""
    if world.item_category is None:
        raise DataError("this world.npz has no sessions (simulated before them): simulate it again")
    rng = np.random.default_rng(seed)
    rows = (np.sort(rng.choice(world.n_users, min(n_users, world.n_users), replace=False)) if users is None
            else np.asarray(users, np.int64) - 1)
    at = world.end
    intents = world.draw_intent(rows, at, rng)
    drawn = []
    for s in range(0, len(rows), CHUNK):
        p = world.matrix(rows[s:s + CHUNK] + 1, "ctr", at=at, intent=intents[s:s + CHUNK])
        # Distinct draws proportional to p: the top `clicks` of log p plus Gumbel noise.
        drawn.append(top_k(np.log(np.maximum(p, 1e-30)) + rng.gumbel(size=p.shape), clicks))
    return Sessions(rows, intents, np.concatenate(drawn) if drawn else np.empty((0, clicks), np.int64), at)


def true_top(world: World, sessions: Sessions, k: int = 20, objective: str = "ctcvr",
             intent: bool = True) -> np.ndarray:
    """(B, k) item rows: each session's best k by the truth at its moment, with its intent (or
    without), its clicks left out."""
    if objective not in ("ctcvr", "ctr"):
        raise ValueError(f"objective must be ctcvr or ctr, not {objective!r}")
    out = []
    for s in range(0, len(sessions.users), CHUNK):
        part = slice(s, s + CHUNK)
        scores = world.matrix(sessions.users[part] + 1, objective, at=sessions.at,
                              intent=sessions.intents[part] if intent else None).astype(np.float64)
        np.put_along_axis(scores, sessions.clicks[part], -np.inf, axis=1)
        out.append(top_k(scores, k))
    return np.concatenate(out) if out else np.empty((0, k), np.int64)


def freshness(world: World, recommend: Recommend, sessions: Sessions | None = None, k: int = 20,
              objective: str = "ctcvr", n_users: int = 500, clicks: int = 3, seed: int = 0) -> dict:
    """The shares above over `sessions` (default: draw_sessions(world, n_users, clicks, seed))."""
    sessions = draw_sessions(world, n_users, clicks, seed) if sessions is None else sessions
    clicks = sessions.clicks.shape[1]
    item_ids = np.arange(1, world.n_items + 1).astype(str)
    best, blind = true_top(world, sessions, k, objective), true_top(world, sessions, k, objective, intent=False)
    shares = {"with_recent_items": [], "without_recent_items": [], "intent_blind": []}
    for b, user in enumerate(sessions.users):
        want = set(item_ids[best[b]])
        recent = list(item_ids[sessions.clicks[b]])
        shares["intent_blind"].append(len(want & set(item_ids[blind[b]])) / k)
        for name, sent in (("with_recent_items", recent), ("without_recent_items", None)):
            served = [str(i) for i in recommend(str(user + 1), sent, k + clicks) if str(i) not in recent][:k]
            shares[name].append(len(want & set(served)) / k)
    out = {name: float(np.mean(v)) if v else 0.0 for name, v in shares.items()}
    return out | {"random": k / max(world.n_items - clicks, k), "users": len(sessions.users), "k": k,
                  "clicks": clicks, "objective": objective}


def version_recommender(version: Version, candidates: int = 200) -> Recommend:
    """`recommend` over a trained version, as the service answers POST /recommend with the user's id
    (and recent_items): the user tower on the stored features and history (recent_items appended, the
    last history_length kept), the index's top max(k, candidates) by similarity re-scored by
    pCTR × pCVR. Exact search when the version has no index."""
    tower, heads = version.numpy_tower("user"), version.heads()
    users = version.table("user")
    stored, length = version.user_history(), version.history_length
    if version.has_index:
        index = version.index()
        item_ids, embeddings = index.item_ids, index.embeddings
        search = lambda u, n: index.ann.search(u, n)[1][0]  # noqa: E731
    else:
        items = version.table("item")
        item_ids, embeddings = items.ids, version.numpy_tower("item")(items.rows(np.arange(len(items))))
        search = lambda u, n: top_k(u @ embeddings.T, n)[0]  # noqa: E731

    def recommend(user_id: str, recent_items: Sequence[str] | None, k: int) -> list[str]:
        cols = users.rows([users.position[str(user_id)]])
        if length:
            past = stored.get(str(user_id)) if stored is not None else []
            cols[HISTORY] = history_column([past + [str(i) for i in recent_items or ()]], length)
        u = np.ascontiguousarray(tower(cols), np.float32)
        rows = search(u, min(max(k, candidates), len(item_ids)))
        rows = rows[rows >= 0]
        p_click, p_conv = heads.predict(u[:, None, :], embeddings[rows][None])
        order = np.argsort(-(p_click * p_conv)[0], kind="stable")[:k]
        return [str(i) for i in item_ids[rows[order]]]

    return recommend
