"""A planted world for `recsys simulate --profile realistic`: latent tastes, known truth.

Every user u and item i has a hidden unit taste vector (dimension DIM). The observable
features are drawn together with them, so they carry part of the taste and generalise to
ids never seen in training:

    user:  region r (a taste centre, a mix of a few category centres), age (a taste
           direction and price sensitivity), device (a small taste shift and price
           sensitivity); taste_u = normalise(centre_r + 0.5 age_z a + 0.3 d_device + noise)
    item:  category k (the cluster of its taste vector), brand b (belongs to one category,
           has its own taste offset and a hidden quality q_b), price (log-normal around the
           category's level, dearer for better brands);
           taste_i = normalise(centre_k + 0.5 d_b + noise)

Truth (sigmoid = 1 / (1 + e^-x), aff = taste_u · taste_i in [-1, 1]; constants in PARAMS:
a0 -3.0, tau 4, beta 0.8, c0 -1.9, kappa 0.9, eta 1):

    p_click(u, i)      = sigmoid(a0 + tau aff + beta pop_z_i)
    p_conversion(u, i) = sigmoid(c0 + c_u - s_u (log price_i - mean) + kappa quality_i + eta aff)
                         (conversion given a click; s_u: price sensitivity from age, device and
                         noise; c_u: user propensity from region and noise; quality_i: brand
                         quality plus item noise)
    p_ctcvr            = p_click * p_conversion

Popularity is a power law: item weight w_i ∝ (rank_i + 5)^-1 over a random ranking,
pop_z_i the log weight standardised over exposures (mean and spread weighted by w, so
the click bias is comparable at any catalogue size). User activity is log-normal. An
exposure picks a user by activity, then (half the time) an item by popularity, or (the
other half) the best of CANDIDATES uniformly drawn items by a noisy affinity
(tau aff + Gumbel noise). Then click ~ Bernoulli(p_click) and, for every row,
conversion_if_clicked ~ Bernoulli(p_conversion); conversion = click * conversion_if_clicked.

`World.load(dir)` reads `world.npz` and answers p_click / p_conversion / p_ctcvr for any
(user_id, item_id) pairs (ids are 1..N, given as ints or strings) and `matrix` /
`iter_matrix` for users × all items, in chunks. Nothing ever builds a users × items matrix
beyond a chunk of users.
"""

from __future__ import annotations

import sys
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from recsys.artifacts.errors import DataError
from recsys.artifacts.heads import sigmoid
from recsys.artifacts.progress import Progress

DIM = 16
N_CATEGORIES = 24
REGIONS = ("north", "south", "east", "west", "central", "coast", "mountain", "capital", "islands", "plains")
DEVICES = ("android", "ios", "web", "tablet")
DEVICE_SHARE = (0.45, 0.35, 0.15, 0.05)
DEVICE_PRICE_SENSITIVITY = (1.15, 0.7, 1.0, 0.85)
CANDIDATES = 32            # targeted exposures: best of this many random items
TARGETED_SHARE = 0.5       # the rest are popularity-driven
CHUNK = 1 << 16            # exposures generated per chunk (fixed: part of the determinism)
T0, SPAN = 1_700_000_000, 90 * 86400   # timestamps: 90 days from 2023-11-14, in order

# Truth constants (see the module docstring).
PARAMS = {"a0": -3.0, "tau": 4.0, "beta": 0.8, "c0": -1.9, "kappa": 0.9, "eta": 1.0}
# What a user's features leave open: taste noise N(0, I / DIM) before normalising,
# log price sensitivity N(0, PRICE_SENS_NOISE^2), propensity N(0, CONV_BIAS_NOISE^2).
PRICE_SENS_NOISE, CONV_BIAS_NOISE = 0.35, 0.4
FILE = "world.npz"


def log(msg: str) -> None:
    print(f"simulate: {msg}", file=sys.stderr, flush=True)


def _unit(x: np.ndarray) -> np.ndarray:
    return x / np.maximum(np.linalg.norm(x, axis=-1, keepdims=True), 1e-12)


def _indices(ids, n: int, what: str) -> np.ndarray:
    """User/item ids (1..n, ints or digit strings) -> 0-based row indices."""
    ids = np.asarray(ids)
    if ids.dtype.kind not in "iu":
        try:
            ids = ids.astype(np.int64)
        except (TypeError, ValueError):
            raise DataError(f"{what} ids must be integers 1..{n}: the simulator's world does not know them "
                            "(is this the data set the model was trained on?)") from None
    idx = ids.astype(np.int64) - 1
    if idx.size and (idx.min() < 0 or idx.max() >= n):
        raise DataError(f"{what} id out of range 1..{n}: the simulator's world does not know it "
                        "(is this the data set the model was trained on?)")
    return idx


@dataclass
class World:
    user_taste: np.ndarray       # (U, DIM) float32, unit rows
    user_price_sens: np.ndarray  # (U,) s_u > 0
    user_conv_bias: np.ndarray   # (U,) c_u
    user_activity: np.ndarray    # (U,) exposure weight (sums to 1)
    item_taste: np.ndarray       # (I, DIM) float32, unit rows
    item_pop_z: np.ndarray       # (I,) standardised log popularity
    item_popularity: np.ndarray  # (I,) exposure weight (sums to 1)
    item_log_price: np.ndarray   # (I,) log price minus its catalogue mean
    item_quality: np.ndarray     # (I,)
    params: dict = field(default_factory=lambda: dict(PARAMS))
    # What the user's features imply before the noise (model/evaluation/bayes.py's prior); absent in
    # worlds written before they were kept.
    user_taste_centre: np.ndarray | None = None      # (U, DIM) taste before noise and normalising
    user_price_sens_base: np.ndarray | None = None   # (U,) s_u before its log-normal noise
    user_conv_bias_base: np.ndarray | None = None    # (U,) c_u before its noise

    @property
    def n_users(self) -> int:
        return len(self.user_taste)

    @property
    def n_items(self) -> int:
        return len(self.item_taste)

    # ---- persistence ---------------------------------------------------------------
    def save(self, directory: str | Path) -> Path:
        path = Path(directory) / FILE
        arrays = {k: v for k, v in self.__dict__.items() if isinstance(v, np.ndarray)}
        np.savez(path, **arrays, params=np.array([self.params[k] for k in PARAMS], np.float64))
        return path

    @classmethod
    def load(cls, directory: str | Path) -> World:
        path = Path(directory)
        path = path / FILE if path.is_dir() else path
        with np.load(path) as z:
            arrays = {k: z[k] for k in z.files if k != "params"}
            params = dict(zip(PARAMS, z["params"].tolist()))
        return cls(**arrays, params=params)

    # ---- truth on row indices --------------------------------------------------------
    def _affinity(self, u: np.ndarray, i: np.ndarray, chunk: int = 1 << 20) -> np.ndarray:
        out = np.empty(len(u), np.float32)
        for s in range(0, len(u), chunk):
            out[s:s + chunk] = np.einsum("nd,nd->n", self.user_taste[u[s:s + chunk]],
                                         self.item_taste[i[s:s + chunk]])
        return out

    # The truth equations, the one place they are written. Arguments broadcast: aff (..., n),
    # items i (n,), the user's propensity `bias` and price sensitivity `sens` (..., 1) or (n,).
    def click_logit(self, aff, i):
        p = self.params
        return p["a0"] + p["tau"] * aff + p["beta"] * self.item_pop_z[i]

    def conv_logit(self, aff, i, bias, sens):
        p = self.params
        return (p["c0"] + bias - sens * self.item_log_price[i]
                + p["kappa"] * self.item_quality[i] + p["eta"] * aff)

    def _probs(self, u: np.ndarray, i: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        aff = self._affinity(u, i)
        return (sigmoid(self.click_logit(aff, i)).astype(np.float32),
                sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u], self.user_price_sens[u])).astype(np.float32))

    # ---- truth on ids ------------------------------------------------------------------
    def _pairs(self, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
        u = _indices(user_ids, self.n_users, "user")
        i = _indices(item_ids, self.n_items, "item")
        if u.shape != i.shape:
            raise ValueError(f"user_ids {u.shape} and item_ids {i.shape} differ in shape")
        return u.ravel(), i.ravel()

    def p_click(self, user_ids, item_ids) -> np.ndarray:
        """True click probability of each (user, item) pair (vectorised)."""
        u, i = self._pairs(user_ids, item_ids)
        return sigmoid(self.click_logit(self._affinity(u, i), i)).astype(np.float32)

    def p_conversion(self, user_ids, item_ids) -> np.ndarray:
        """True conversion probability given a click."""
        u, i = self._pairs(user_ids, item_ids)
        aff = self._affinity(u, i)
        return sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u], self.user_price_sens[u])).astype(np.float32)

    def p_ctcvr(self, user_ids, item_ids) -> np.ndarray:
        """True probability that an exposure converts: p_click * p_conversion."""
        click, conv = self._probs(*self._pairs(user_ids, item_ids))
        return click * conv

    def matrix(self, user_ids, what: str = "ctcvr", item_ids=None) -> np.ndarray:
        """(len(user_ids), n_items) true probabilities; columns are item ids 1..I in order
        (or `item_ids` in their order). what: ctr | cvr | ctcvr. Keep user_ids to a chunk."""
        if what not in ("ctr", "cvr", "ctcvr"):
            raise ValueError(f"what must be ctr, cvr or ctcvr, not {what!r}")
        u = _indices(user_ids, self.n_users, "user").ravel()
        i = np.arange(self.n_items) if item_ids is None else _indices(item_ids, self.n_items, "item").ravel()
        aff = self.user_taste[u] @ self.item_taste[i].T
        out = None
        if what in ("ctr", "ctcvr"):
            out = sigmoid(self.click_logit(aff, i))
        if what in ("cvr", "ctcvr"):
            conv = sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u][:, None], self.user_price_sens[u][:, None]))
            out = conv if out is None else out * conv
        return out.astype(np.float32)

    def iter_matrix(self, user_ids, what: str = "ctcvr", item_ids=None, chunk: int = 256):
        """Yields (user_ids chunk, matrix of that chunk) over all of `user_ids`."""
        user_ids = np.asarray(user_ids)
        for s in range(0, len(user_ids), chunk):
            part = user_ids[s:s + chunk]
            yield part, self.matrix(part, what, item_ids)


# ---- generation --------------------------------------------------------------------------
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def make_world(n_users: int, n_items: int, seed: int = 0) -> tuple[World, pd.DataFrame, pd.DataFrame]:
    """(world, users table, items table) with the realistic profile's default feature names."""
    if n_users < 1 or n_items < 1:
        raise ValueError("need at least one user and one item")
    g = _rng(seed, 0)
    cat_centres = _unit(g.standard_normal((N_CATEGORIES, DIM)))
    mix = g.dirichlet(np.full(N_CATEGORIES, 0.15), size=len(REGIONS))    # a few categories each
    region_centres = _unit(mix @ cat_centres + 0.3 * g.standard_normal((len(REGIONS), DIM)) / np.sqrt(DIM))
    age_dir = _unit(g.standard_normal(DIM))
    device_dirs = _unit(g.standard_normal((len(DEVICES), DIM)))
    region_conv = 0.3 * g.standard_normal(len(REGIONS))
    n_brands = int(np.clip(n_items // 20, N_CATEGORIES, 5000))
    brand_dirs = _unit(g.standard_normal((n_brands, DIM)))
    brand_quality = g.standard_normal(n_brands)
    cat_log_price = g.uniform(np.log(5), np.log(300), N_CATEGORIES)
    cat_share = g.dirichlet(np.full(N_CATEGORIES, 2.0))

    # users
    g = _rng(seed, 1)
    region = g.integers(0, len(REGIONS), n_users)
    device = np.searchsorted(np.cumsum(DEVICE_SHARE), g.random(n_users) * 0.999999)
    age = np.clip(np.rint(g.normal(38, 12, n_users)), 18, 75).astype(np.int64)
    age_z = (age - 38.0) / 12.0
    taste_centre = region_centres[region] + 0.5 * age_z[:, None] * age_dir + 0.3 * device_dirs[device]
    user_taste = _unit(taste_centre + g.standard_normal((n_users, DIM)) / np.sqrt(DIM)).astype(np.float32)
    sens_base = np.asarray(DEVICE_PRICE_SENSITIVITY)[device] * np.exp(-0.25 * age_z)
    price_sens = sens_base * np.exp(PRICE_SENS_NOISE * g.standard_normal(n_users))
    conv_base = region_conv[region]
    conv_bias = conv_base + CONV_BIAS_NOISE * g.standard_normal(n_users)
    activity = np.exp(1.0 * g.standard_normal(n_users))

    # items
    g = _rng(seed, 2)
    category = np.searchsorted(np.cumsum(cat_share), g.random(n_items) * 0.999999)
    per_cat = np.bincount(np.arange(n_brands) % N_CATEGORIES, minlength=N_CATEGORIES)
    brand = category + N_CATEGORIES * (g.random(n_items) * per_cat[category]).astype(np.int64)
    item_taste = _unit(cat_centres[category] + 0.5 * brand_dirs[brand]
                       + 0.8 * g.standard_normal((n_items, DIM)) / np.sqrt(DIM)).astype(np.float32)
    log_price = cat_log_price[category] + 0.3 * brand_quality[brand] + 0.5 * g.standard_normal(n_items)
    price = np.round(np.exp(log_price), 2)
    quality = brand_quality[brand] + 0.5 * g.standard_normal(n_items)
    rank = g.permutation(n_items)
    weight = (rank + 5.0) ** -1.0
    # Standardised over exposures (weights w), so the click bias of what users are shown
    # has the same spread at any catalogue size (log-rank is ~uniform under w ∝ 1/rank).
    log_w, p_w = np.log(weight), weight / weight.sum()
    mean_w = float(p_w @ log_w)
    pop_z = (log_w - mean_w) / max(float(np.sqrt(p_w @ (log_w - mean_w) ** 2)), 1e-12)

    world = World(
        user_taste=user_taste, user_price_sens=price_sens.astype(np.float32),
        user_conv_bias=conv_bias.astype(np.float32), user_activity=activity / activity.sum(),
        item_taste=item_taste, item_pop_z=pop_z.astype(np.float32), item_popularity=weight / weight.sum(),
        item_log_price=(np.log(price) - np.log(price).mean()).astype(np.float32),
        item_quality=quality.astype(np.float32), user_taste_centre=taste_centre.astype(np.float32),
        user_price_sens_base=sens_base.astype(np.float32), user_conv_bias_base=conv_base.astype(np.float32))
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1), "age": age,
                          "region": np.asarray(REGIONS)[region], "device": np.asarray(DEVICES)[device]})
    width = len(str(n_brands - 1))
    brand_names = np.char.add("b", np.char.zfill(np.arange(n_brands).astype(str), width))
    items = pd.DataFrame({"item_id": np.arange(1, n_items + 1),
                          "category": np.char.add("c", np.char.zfill(category.astype(str), 2)),
                          "brand": brand_names[brand], "price": price})
    return world, users, items


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)


def exposures(world: World, n: int, seed: int = 0, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, truth), row-aligned; generated in fixed-size chunks from per-chunk streams."""
    user_cdf = np.cumsum(world.user_activity)
    item_cdf = np.cumsum(world.item_popularity)
    tau = world.params["tau"]
    out = {k: np.empty(n, t) for k, t in (("u", np.int64), ("i", np.int64), ("click", np.int8),
                                           ("would", np.int8), ("pc", np.float32), ("pv", np.float32))}
    n_chunks = -(-n // CHUNK)
    bar = Progress(n, "simulate: exposures", "rows") if progress and n_chunks > 1 else None
    for c in range(n_chunks):
        s, e = c * CHUNK, min(n, (c + 1) * CHUNK)
        m = e - s
        g = _rng(seed, 3, c)
        u = _draw(user_cdf, g.random(m))
        targeted = g.random(m) < TARGETED_SHARE
        i = _draw(item_cdf, g.random(m))
        t = np.flatnonzero(targeted)
        if len(t):
            cand = g.integers(0, world.n_items, (len(t), CANDIDATES))
            aff = np.einsum("nd,ncd->nc", world.user_taste[u[t]], world.item_taste[cand])
            pick = np.argmax(tau * aff + g.gumbel(size=aff.shape), axis=1)
            i[t] = cand[np.arange(len(t)), pick]
        pc, pv = world._probs(u, i)
        out["u"][s:e], out["i"][s:e], out["pc"][s:e], out["pv"][s:e] = u, i, pc, pv
        out["click"][s:e] = g.random(m) < pc
        out["would"][s:e] = g.random(m) < pv
        if bar is not None:
            bar.update(m)
    if bar is not None:
        bar.close()
    interactions = pd.DataFrame({
        "user_id": out["u"] + 1, "item_id": out["i"] + 1, "click": out["click"],
        "conversion": out["click"] * out["would"],
        "timestamp": T0 + (np.arange(n, dtype=np.int64) * SPAN) // max(n, 1),
    })
    truth = pd.DataFrame({"p_click": out["pc"], "p_conversion": out["pv"], "conversion_if_clicked": out["would"]})
    return interactions, truth
