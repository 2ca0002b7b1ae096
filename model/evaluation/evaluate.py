"""Offline evaluation of one artifact version against baselines, printed as JSON.

Evaluation rows: the held-out split of the training data when the dataset fingerprint
matches the version's manifest (the same split is recomputed by dataset.split_rows from the
manifest's config, random or time; "split" in the result says which), otherwise every
interaction. Ranking positives: each user's held-out clicked items, or the items listed in
the dataset's `test.parquet` (leave-last-out data sets such as the MovieLens conversion).

    ctr_auc     p_click vs click, evaluation rows
    cvr_auc     p_conversion vs conversion, clicked evaluation rows
    ctcvr_auc   p_click * p_conversion vs conversion, evaluation rows
    recall@K, ndcg@K   positives ranked by the objective over the whole catalogue, minus
                       the items each user interacted with in training
On simulated data with a saved world (truth) also:
    cvr_auc_all        p_conversion vs the would-convert-if-clicked label, every evaluation
                       row (what the masked CVR loss is biased on)
    true_ndcg@K_by_<obj>   the catalogue ranked by <obj> (the objective, and ctr), gains =
                       the true pCTCVR of each item; at each K asked for and at 50
Baselines get the same metrics: popularity (click counts; smoothed item CTR/CVR),
item_knn (rankings only: summed cosine similarity of item co-clicks to the user's training
clicks, model/evaluation/knn.py), random, the oracle (true probabilities) and, for pointwise metrics only, `bayes`: the
posterior mean of a learner that knows every item and the world's equations and infers
each user from their training rows (model/evaluation/bayes.py). `index` compares the ANN index with exact
search: recall@K of its top-K against the exact top-K by similarity. `cold_users` repeats the
ranking metrics of every ranking scorer over the ranked users with at most COLD_USER_CLICKS
training clicks, with their count.
"""

from __future__ import annotations

import sys
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import DataError
from recsys.artifacts.feature_store import FeatureStore, to_columns
from recsys.artifacts.metrics import auc, ctr_cvr_aucs, recall_at_k, recall_ndcg_at_k
from recsys.artifacts.progress import Progress
from recsys.artifacts.version import Version
from recsys.artifacts.user_history import COLUMN as HISTORY
from recsys.artifacts.user_history import StoredHistories, latest_clicks
from recsys.model.data.dataset import load_dataset, split_rows
from recsys.model.data.world import World
from recsys.model.evaluation.bayes import BayesPredictor, available
from recsys.model.evaluation.knn import ItemKNNScorer

BAYES_MAX_USERS = 100_000
# Users with at most this many training clicks are also scored on their own ("cold_users"): the
# users a collaborative signal knows least about.
COLD_USER_CLICKS = 2
# Scores that can rank the catalogue: the service's ctcvr, either head alone, or u·v.
OBJECTIVES = ("ctcvr", "ctr", "cvr", "similarity")


def top_k(scores: np.ndarray, k: int) -> np.ndarray:
    """(B, N) -> (B, min(k, N)) column indices, best first."""
    k = min(k, scores.shape[1])
    part = np.argpartition(-scores, k - 1, axis=1)[:, :k]
    order = np.argsort(-np.take_along_axis(scores, part, axis=1), axis=1, kind="stable")
    return np.take_along_axis(part, order, axis=1)


class ModelScorer:
    """Scores from the exported towers and the numpy heads."""

    def __init__(self, version: Version, users: pd.DataFrame, catalogue: FeatureStore,
                 histories: StoredHistories | None = None):
        self.user_tower = version.saved_tower("user")
        self.item_tower = version.saved_tower("item")
        self.heads = version.heads()
        self.spec = version.spec
        self.item_vecs = self.item_tower.embed(catalogue.rows(np.arange(len(catalogue))))
        self.users = users.set_index("user_id")
        # The users' histories (a history model only): the caller's, built from rows the evaluation may
        # see, else the version's stored ones.
        self.histories = (histories or version.user_history()) if version.history_length else None

    def user_columns(self, rows: pd.DataFrame) -> dict[str, np.ndarray]:
        cols = to_columns(rows, self.spec.tower("user"))
        if self.histories is not None:
            cols[HISTORY] = self.histories.column(rows["user_id"].astype(str))
        return cols

    def user_vecs(self, user_ids: np.ndarray) -> np.ndarray:
        rows = self.users.loc[user_ids].reset_index()
        return self.user_tower.embed(self.user_columns(rows))

    def pointwise(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        u = self.user_tower.embed(self.user_columns(rows))
        v = self.item_tower.embed(to_columns(rows, self.spec.tower("item")))
        return self.heads.predict(u, v)

    def rank(self, user_ids: np.ndarray, objective: str) -> np.ndarray:
        u = self.user_vecs(user_ids)
        if objective == "similarity":
            return u @ self.item_vecs.T
        p_click, p_conv = self.heads.predict(u[:, None, :], self.item_vecs[None, :, :])
        return {"ctcvr": p_click * p_conv, "ctr": p_click, "cvr": p_conv}[objective]


class PopularityScorer:
    """Most-popular: ranks by training clicks; probabilities are smoothed item rates."""

    def __init__(self, train: pd.DataFrame, catalogue_ids: np.ndarray, prior: float = 20.0):
        g = train.groupby("item_id").agg(n=("click", "size"), c=("click", "sum"), v=("conversion", "sum"))
        g = g.reindex(catalogue_ids).fillna(0)
        ctr = train["click"].mean()
        cvr = train["conversion"].sum() / max(train["click"].sum(), 1)
        self.p_click = ((g["c"] + prior * ctr) / (g["n"] + prior)).to_numpy()
        self.p_conv = ((g["v"] + prior * cvr) / (g["c"] + prior)).to_numpy()
        self.clicks = g["c"].to_numpy(np.float64) + 1e-6 * self.p_click  # ties by smoothed CTR
        self.position = pd.Series(np.arange(len(catalogue_ids)), index=catalogue_ids)

    def pointwise(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        pos = self.position.reindex(rows["item_id"]).to_numpy()
        return self.p_click[pos], self.p_conv[pos]

    def rank(self, user_ids: np.ndarray, objective: str) -> np.ndarray:
        return np.broadcast_to(self.clicks, (len(user_ids), len(self.clicks))).copy()


class RandomScorer:
    def __init__(self, n_items: int, seed: int = 0):
        self.n_items, self.rng = n_items, np.random.default_rng(seed)

    def pointwise(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.rng.uniform(size=len(rows)), self.rng.uniform(size=len(rows))

    def rank(self, user_ids: np.ndarray, objective: str) -> np.ndarray:
        return self.rng.uniform(size=(len(user_ids), self.n_items))


class BayesScorer:
    """model/evaluation/bayes.py's posterior means; pointwise only (a posterior over the whole catalogue
    per user costs samples × items)."""

    def __init__(self, world, train: pd.DataFrame):
        self.predictor = BayesPredictor(world, train)

    def pointwise(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        return self.predictor.predict(rows["user_id"].to_numpy(), rows["item_id"].to_numpy())


class OracleScorer:
    """The simulator's true probabilities."""

    def __init__(self, world, truth_rows: pd.DataFrame, catalogue_ids: np.ndarray):
        self.world, self.truth, self.catalogue_ids = world, truth_rows, catalogue_ids

    def pointwise(self, rows: pd.DataFrame) -> tuple[np.ndarray, np.ndarray]:
        t = self.truth.iloc[rows["_row"].to_numpy()]
        return t["p_click"].to_numpy(), t["p_conversion"].to_numpy()

    def rank(self, user_ids: np.ndarray, objective: str) -> np.ndarray:
        return true_scores(self.world, user_ids, self.catalogue_ids, "ctr" if objective == "ctr" else "ctcvr")


def true_scores(world, user_ids: np.ndarray, item_ids: np.ndarray, what: str = "ctcvr", at=None) -> np.ndarray:
    """(B, N) true probabilities of every (user, item) pair at `at` (epoch seconds; None: the end of
    the simulated period), outside any session's intent."""
    users = np.repeat(np.asarray(user_ids), len(item_ids))
    items = np.tile(np.asarray(item_ids), len(user_ids))
    when = {} if at is None else {"at": at}
    p = world.p_click(users, items, **when) if what == "ctr" else world.p_ctcvr(users, items, **when)
    return np.asarray(p, np.float64).reshape(len(user_ids), len(item_ids))


def load_truth(directory: Path):
    """(world, per-row truth) of a simulated data set, or (None, None)."""
    if not (directory / "truth.parquet").is_file():
        return None, None
    return World.load(directory), pd.read_parquet(directory / "truth.parquet")


def ndcg_against_gains(ranked_cols: np.ndarray, gains: np.ndarray, k: int) -> float:
    """Mean NDCG@k of rankings (B, >=k) column indices against graded gains (B, N)."""
    return ndcg_at_ks(ranked_cols, gains, (k,))[k]


def ndcg_at_ks(ranked_cols: np.ndarray, gains: np.ndarray, ks, ideal: np.ndarray | None = None) -> dict[int, float]:
    """{k: mean NDCG@k} of rankings (B, >=max(ks)) against graded gains (B, N), from one pass.

    `ideal`: `ideal_gains(gains, max(ks))`, when several rankings share the gains (it sorts each row).
    A k past the catalogue's size counts the whole catalogue.
    """
    n = min(max(ks), ranked_cols.shape[1], gains.shape[1])
    ideal = ideal_gains(gains, n) if ideal is None else ideal[:, :n]
    disc = 1.0 / np.log2(np.arange(2, n + 2))
    got = np.cumsum(np.take_along_axis(gains, ranked_cols[:, :n], axis=1) * disc, axis=1)
    best = np.maximum(np.cumsum(ideal * disc, axis=1), 1e-12)
    return {k: float(np.mean(got[:, min(k, n) - 1] / best[:, min(k, n) - 1])) for k in ks}


def ideal_gains(gains: np.ndarray, k: int) -> np.ndarray:
    """(B, min(k, N)): each row's largest gains, best first."""
    return -np.sort(-gains, axis=1)[:, :k]


def _pointwise_metrics(p_click, p_conv, rows: pd.DataFrame, truth_rows: pd.DataFrame | None) -> dict:
    click, conv = rows["click"].to_numpy(), rows["conversion"].to_numpy()
    out = ctr_cvr_aucs(click, conv, p_click, p_conv)
    if truth_rows is not None and "conversion_if_clicked" in truth_rows:
        would = truth_rows.iloc[rows["_row"].to_numpy()]["conversion_if_clicked"].to_numpy()
        out["cvr_auc_all"] = auc(would, p_conv)
    return out


def _ranking_metrics(scorer, users, positives, seen, catalogue: FeatureStore, ks, objective,
                     world=None, true_k: int = 50, batch: int = 128, name: str = "model",
                     cold: np.ndarray | None = None) -> dict:
    """Recall/NDCG@K (and true NDCG on simulated data) of `users`' rankings; with `cold` (a bool per
    user), the same metrics over those users only, as "cold_users" (absent when there are none).

    The catalogue is also ranked by pCTR when `objective` is another: recall/NDCG of that ranking
    are "recall@K_by_ctr" / "ndcg@K_by_ctr" (held-out positives are clicks, which pCTR estimates)."""
    kmax = max(ks)
    cold = np.zeros(len(users), bool) if cold is None else np.asarray(cold, bool)
    objectives = [objective] + (["ctr"] if objective != "ctr" else [])
    # True NDCG at every K asked for, and always at `true_k` (the report's targets read @50).
    true_ks = sorted({*ks, true_k})
    ranked = {obj: [] for obj in objectives}
    true_ndcg = {(obj, k): 0.0 for obj in objectives for k in true_ks}
    cold_ndcg = dict.fromkeys(true_ndcg, 0.0)
    # Training items masked out of each user's ranking (held-out positives stay), as column
    # indices, once per user rather than once per user and objective.
    masked = {u: np.fromiter((catalogue.position[i] for i in seen.get(u, ())
                              if i in catalogue.position and i not in positives[u]), dtype=np.int64)
              for u in users}
    with Progress(len(users), f"evaluate: ranking the catalogue ({name})", "users") as bar:
        for start in range(0, len(users), batch):
            chunk = users[start:start + batch]
            cold_chunk = cold[start:start + batch]
            gains = true_scores(world, chunk, catalogue.ids, "ctcvr") if world is not None else None
            ideal = ideal_gains(gains, max(true_ks)) if gains is not None else None
            mask_cols = [masked[u] for u in chunk]
            mask_rows = np.repeat(np.arange(len(chunk)), [len(c) for c in mask_cols])
            mask_cols = np.concatenate(mask_cols) if len(chunk) else np.empty(0, np.int64)
            for obj in objectives:
                scores = scorer.rank(chunk, obj).astype(np.float64)
                scores[mask_rows, mask_cols] = -np.inf
                cols = top_k(scores, max(kmax, *true_ks))
                ranked[obj].append(catalogue.ids[cols[:, :kmax]])
                if gains is not None:
                    for k, value in ndcg_at_ks(cols, gains, true_ks, ideal).items():
                        true_ndcg[obj, k] += value * len(chunk)
                    if cold_chunk.any():
                        sub = ndcg_at_ks(cols[cold_chunk], gains[cold_chunk], true_ks, ideal[cold_chunk])
                        for k, value in sub.items():
                            cold_ndcg[obj, k] += value * cold_chunk.sum()
            bar.update(len(chunk))
    ranked = {obj: np.concatenate(r) if r else np.empty((0, kmax), dtype=object) for obj, r in ranked.items()}
    out = _hit_metrics(ranked, [positives[u] for u in users], list(ks), objectives)
    if world is not None and len(users):
        out.update({f"true_ndcg@{k}_by_{obj}": total / len(users) for (obj, k), total in true_ndcg.items()})
    if cold.any():
        n_cold = int(cold.sum())
        sub = _hit_metrics({obj: r[cold] for obj, r in ranked.items()}, [positives[u] for u in users[cold]],
                           list(ks), objectives)
        if world is not None:
            sub.update({f"true_ndcg@{k}_by_{obj}": total / n_cold for (obj, k), total in cold_ndcg.items()})
        out["cold_users"] = sub
    return out


def _hit_metrics(ranked: dict[str, np.ndarray], wanted: list[set], ks: list[int], objectives: list[str]) -> dict:
    """recall/NDCG@K of the ranking by objectives[0], then "..._by_X" of the ranking by each other X."""
    out = recall_ndcg_at_k(ranked[objectives[0]], wanted, ks)
    for obj in objectives[1:]:
        out.update({f"{m}_by_{obj}": v for m, v in recall_ndcg_at_k(ranked[obj], wanted, ks).items()})
    return out


def _ann_recall(version: Version, scorer: ModelScorer, users: np.ndarray, ks) -> dict | None:
    if not version.has_index:
        return None
    index = version.index()  # searched with the defaults it was built with, as the service does by default
    u = scorer.user_vecs(users)
    out = {"kind": index.manifest["kind"]}
    exact = top_k(u @ index.embeddings.T, max(ks))
    _, approx = index.ann.search(np.ascontiguousarray(u, dtype=np.float32), min(max(ks), len(index.item_ids)))
    for k in ks:
        out[f"recall@{k}"] = recall_at_k(approx, exact, k)
    return out


def evaluate(artifacts: str | Path, data: str | Path, version: str | None = None,
             ks: tuple[int, ...] = (10, 50, 100), objective: str = "ctcvr", max_users: int = 2000,
             baselines: bool = True, seed: int = 0) -> dict:
    opened = Version.open(artifacts, version)
    manifest = opened.manifest
    ds = load_dataset(data)
    wanted = {(f.name, f.tower) for f in opened.spec.features}
    if not wanted <= {(f.name, f.tower) for f in ds.spec.features}:
        missing = sorted(name for name, _ in wanted - {(f.name, f.tower) for f in ds.spec.features})
        raise DataError(f"{data}: lacks the model's features {missing} (is this the data set the model was "
                        "trained on?)")
    cfg = manifest["config"]
    n = len(ds.interactions)
    same_data = ds.fingerprint == manifest["data"]["fingerprint"]
    how = cfg.get("split", "random")  # versions from before the choice existed split at random
    train_rows, test_rows = (split_rows(ds.interactions, how, cfg["test_size"], cfg["seed"]) if same_data
                             else (np.empty(0, int), np.arange(n)))
    rows = ds.joined(test_rows).assign(_row=test_rows)
    train = ds.interactions.iloc[train_rows]
    world, truth_rows = load_truth(Path(data))

    catalogue = opened.table("item")
    test_file = Path(data) / "test.parquet"
    if test_file.is_file():  # leave-last-out: the held-out items are not in the interactions
        test = pd.read_parquet(test_file).astype({"user_id": str, "item_id": str})
        positives = test.groupby("user_id")["item_id"].agg(set)
        seen = ds.interactions[ds.interactions["click"] == 1].groupby("user_id")["item_id"].agg(set)
    else:
        positives = rows[rows["click"] == 1].groupby("user_id")["item_id"].agg(set)
        seen = train.groupby("user_id")["item_id"].agg(set)
    users = positives.index.to_numpy()
    if len(users) > max_users:
        users = np.sort(np.random.default_rng(seed).choice(users, max_users, replace=False))
    # The clicks each ranked user is known by: the training split's, or all the data's before a leave-last-out test.
    known = ds.interactions if test_file.is_file() else train
    user_clicks = known[known["click"] == 1].groupby("user_id").size().reindex(users).fillna(0).to_numpy()
    cold = user_clicks <= COLD_USER_CLICKS

    histories = None
    if opened.history_length and (same_data or test_file.is_file()):
        # Never a held-out row: the training split's clicks, or all the data when the held-out rows
        # (leave-last-out) come after it.
        histories = StoredHistories(latest_clicks(ds.interactions if test_file.is_file() else train,
                                                  opened.history_length, cfg["seed"]), opened.history_length)
    scorers = {"model": ModelScorer(opened, ds.users, catalogue, histories)}
    if baselines:
        scorers["popularity"] = PopularityScorer(train if len(train) else ds.interactions, catalogue.ids)
        scorers["item_knn"] = ItemKNNScorer(train if len(train) else ds.interactions, catalogue.ids)
        scorers["random"] = RandomScorer(len(catalogue), seed)
        if world is not None:
            if available(world) and len(train):
                n_users = rows["user_id"].nunique()
                if n_users <= BAYES_MAX_USERS:
                    scorers["bayes"] = BayesScorer(world, train)
                else:
                    print(f"evaluate: bayes reference skipped: {n_users:,} users in the evaluation rows (at most "
                          f"{BAYES_MAX_USERS:,}; it costs about a millisecond per user)", file=sys.stderr)
            scorers["oracle"] = OracleScorer(world, truth_rows, catalogue.ids)

    result = {
        "version": manifest["version"],
        "rows": "held-out split" if same_data else "all rows (dataset differs from training data)",
        "split": how if same_data else None,
        "n_rows": int(len(rows)),
        "objective": objective,
        "ranking_positives": "test.parquet (leave-last-out)" if test_file.is_file() else "held-out clicks",
        "users_ranked": int(len(users)),
        "cold_users": {"max_training_clicks": COLD_USER_CLICKS, "users_ranked": int(cold.sum())},
    }
    for name, scorer in scorers.items():
        metrics = {}
        if hasattr(scorer, "pointwise"):  # item_knn ranks, it does not predict rows
            metrics = _pointwise_metrics(*scorer.pointwise(rows), rows, truth_rows)
        if hasattr(scorer, "rank"):
            metrics.update(_ranking_metrics(scorer, users, positives, seen, catalogue, ks, objective, world,
                                            name=name, cold=cold))
            if "cold_users" in metrics:
                result["cold_users"][name] = metrics.pop("cold_users")
        if isinstance(scorer, BayesScorer):
            metrics.update(scorer.predictor.diagnostics())
        if name == "model":
            result.update(metrics)
        else:
            result.setdefault("baselines", {})[name] = metrics
    result["index"] = _ann_recall(opened, scorers["model"], users, ks)
    result["notes"] = notes(world is not None, test_file.is_file())
    return result


def notes(simulated: bool, leave_last_out: bool) -> list[str]:
    """Where the metrics above mislead, said next to them."""
    out = ["AUCs compare rows (exposures), not rankings: a model can gain AUC and rank no better."]
    if simulated:
        out.append("recall@K and ndcg@K count held-out clicks, which popular items collect most, so they reward "
                   "popularity; true_ndcg@50 (gains = each item's true pCTCVR) is the ranking metric to trust.")
    elif not leave_last_out:
        out.append("recall@K and ndcg@K count held-out clicks of exposures the old system chose, so they favour "
                   "what it already showed (exposure bias).")
    return out


def rounded(value, places: int = 4):
    """`value` with every float rounded to `places`: more digits are noise at these sample sizes."""
    if isinstance(value, float):
        return round(value, places)
    if isinstance(value, dict):
        return {k: rounded(v, places) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return [rounded(v, places) for v in value]
    return value


def as_table(result: dict) -> str:
    """The result for a terminal: one row per scorer (model first), one column per metric."""
    scorers = {"model": {k: v for k, v in result.items() if isinstance(v, float | int) and not isinstance(v, bool)
                         and k not in ("n_rows", "users_ranked")}}
    scorers.update({name: dict(m) for name, m in result.get("baselines", {}).items()})
    cold = result.get("cold_users", {})
    for name, m in cold.items():  # the cold users' rows below everyone's
        if isinstance(m, dict) and name in scorers:
            scorers[name].update({f"cold_users {k}": v for k, v in m.items()})
    metrics = list(dict.fromkeys(k for m in scorers.values() for k, v in m.items()
                                 if isinstance(v, float | int | None) and not isinstance(v, bool)))
    cell = lambda v: "-" if v is None else f"{v:.4f}" if isinstance(v, float) else str(v)  # noqa: E731
    split = f" ({result['split']} split)" if result.get("split") else ""
    lines = [f"version {result['version']}: {result['rows']}{split}, {result['n_rows']:,} rows; "
             f"{result['users_ranked']:,} users ranked by {result['objective']} against {result['ranking_positives']}"
             + (f"; cold_users: the {cold['users_ranked']:,} of them with at most {cold['max_training_clicks']} "
                "training clicks" if cold else ""),
             ""]
    name_w = max(len(n) for n in scorers)
    for metric in metrics:  # metrics down, scorers across: the names are long, the scorers few
        if not lines[-1]:
            lines[-1] = " " * (max(len(m) for m in metrics)) + "  " + "  ".join(f"{n:>{max(10, name_w)}}"
                                                                              for n in scorers)
        lines.append(f"{metric:<{max(len(m) for m in metrics)}}  "
                     + "  ".join(f"{cell(m.get(metric)):>{max(10, name_w)}}" for m in scorers.values()))
    index = result.get("index")
    if index:
        lines += ["", f"index ({index['kind']}) against exact search: "
                  + ", ".join(f"{k} {v:.4f}" for k, v in index.items() if k != "kind")]
    lines += [""] + [f"note: {n}" for n in result.get("notes", [])]
    return "\n".join(lines)
