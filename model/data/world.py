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

Time: exposures span SPAN seconds from T0. taste_u is the user's taste at the end of that
period; earlier it is normalise(taste_u + drift_u(t)), drift_u a random walk sampled at KNOTS
times (linear between them) that ends at zero. Exposures come in sessions: a user (picked by
activity), a start time, a few rows minutes apart, and an intent: 1 or 2 categories the user is
after now, drawn by the user's taste at that time (categories near it, big ones more often).

Truth at time t in a session with intent K (sigmoid = 1 / (1 + e^-x), aff = taste_u(t) · taste_i
in [-1, 1]; constants in PARAMS: a0 -3.8, tau 4, beta 0.8, gamma 1.5, c0 -1.9, kappa 0.9, eta 1):

    p_click(u, i)      = sigmoid(a0 + tau aff + beta pop_z_i + gamma [category_i in K])
    p_conversion(u, i) = sigmoid(c0 + c_u - s_u (log price_i - mean) + kappa quality_i + eta aff)
                         (conversion given a click; s_u: price sensitivity from age, device and
                         noise; c_u: user propensity from region and noise; quality_i: brand
                         quality plus item noise)
    p_ctcvr            = p_click * p_conversion

Popularity is a power law: item weight w_i ∝ (rank_i + 5)^-1 over a random ranking,
pop_z_i the log weight standardised over exposures (mean and spread weighted by w, so
the click bias is comparable at any catalogue size). User activity is log-normal. An
exposure in a session picks (BROWSE_SHARE of the time) an item of one of the intent's
categories by popularity, else (half the rest) an item by popularity, or (the other half)
the best of CANDIDATES uniformly drawn items by a noisy affinity (tau aff + Gumbel noise).
Then click ~ Bernoulli(p_click) and, for every row, conversion_if_clicked ~
Bernoulli(p_conversion); conversion = click * conversion_if_clicked.

`World.load(dir)` reads `world.npz` and answers p_click / p_conversion / p_ctcvr for any
(user_id, item_id) pairs (ids are 1..N, given as ints or strings) and `matrix` /
`iter_matrix` for users × all items, in chunks, at a time (`at`, epoch seconds; default the
end of the period) and with an intent (category codes; default none). Nothing ever builds a
users × items matrix beyond a chunk of users. A world.npz written before time was simulated
has no drift and no categories: its tastes are constant and it takes no intent.
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
T0, SPAN = 1_700_000_000, 90 * 86400   # timestamps: 90 days from 2023-11-14
# Time: tastes drift as a random walk sampled every SPAN / (KNOTS - 1) seconds (linear between
# knots); DRIFT is the expected distance from the first knot's taste offset to the last's (tastes
# are unit vectors). Sessions: SESSION_ROWS exposures on average (geometric), SESSION_GAP seconds
# apart on average (exponential), each with 1 or 2 intent categories (MAX_INTENT) drawn by
# INTENT_SHARPNESS × taste·category centre plus log category size; BROWSE_SHARE of a session's
# exposures are drawn by popularity within its intent categories.
KNOTS, DRIFT = 10, 0.45
SESSION_ROWS, SESSION_GAP, MAX_INTENT = 6.0, 90.0, 2
INTENT_SHARPNESS, BROWSE_SHARE = 4.0, 0.15

# Truth constants (see the module docstring).
PARAMS = {"a0": -3.8, "tau": 4.0, "beta": 0.8, "c0": -1.9, "kappa": 0.9, "eta": 1.0, "gamma": 1.5}
# Funnel shapes: the click and conversion intercepts that differ from PARAMS. realistic: about
# 8 % CTR and 22 % CVR after a click; sparse: about 4 % CTR and 2 % CVR after a click, the shape
# of Ali-CCP, where conversion labels are rare (the case ESMM's shared training is meant for).
FUNNELS = {"realistic": {}, "sparse": {"a0": -4.5, "c0": -5.3}}
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
    user_taste: np.ndarray       # (U, DIM) float32, unit rows: each user's taste at the end of the period
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
    # Time and intent; absent in worlds written before they were simulated (constant tastes, no intent).
    user_drift: np.ndarray | None = None       # (U, KNOTS - 1, DIM) float16 taste offsets at the knots
    #                                            but the last (where the offset is zero)
    period: np.ndarray | None = None           # (2,) start (epoch seconds) and length of the period
    item_category: np.ndarray | None = None    # (I,) category code, 0..N_CATEGORIES - 1
    category_centre: np.ndarray | None = None  # (N_CATEGORIES, DIM) unit taste centre of each category

    @property
    def n_users(self) -> int:
        return len(self.user_taste)

    @property
    def n_items(self) -> int:
        return len(self.item_taste)

    @property
    def end(self) -> float:
        """The end of the simulated period (epoch seconds): `at=None` means this moment."""
        return float(self.period[0] + self.period[1]) if self.period is not None else float(T0 + SPAN)

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
            # Older files hold fewer constants (no gamma): they take no intent, so the default is never used.
            params = dict(PARAMS) | dict(zip(PARAMS, z["params"].tolist()))
        return cls(**arrays, params=params)

    # ---- time and intent ---------------------------------------------------------------
    def taste(self, u: np.ndarray, at=None) -> np.ndarray:
        """(n, DIM) tastes of user rows `u` at `at` (epoch seconds: a scalar or one per row; None: the end)."""
        u = np.asarray(u, np.int64)
        if at is None or self.user_drift is None:
            return self.user_taste[u]
        knots = self.user_drift.shape[1] + 1
        f = np.clip((np.asarray(at, np.float64) - self.period[0]) / self.period[1], 0.0, 1.0) * (knots - 1)
        f = np.broadcast_to(f, u.shape)
        k = np.minimum(f.astype(np.int64), knots - 2)
        w = (f - k).astype(np.float32)[:, None]
        before = self.user_drift[u, k].astype(np.float32)
        after = np.where((k + 1 < knots - 1)[:, None],
                         self.user_drift[u, np.minimum(k + 1, knots - 2)].astype(np.float32), 0.0)
        return _unit(self.user_taste[u] + (1 - w) * before + w * after).astype(np.float32)

    def intent_codes(self, intent, rows: int) -> np.ndarray | None:
        """(rows, M) category codes (-1: none) from None, one intent for all rows ((M,) codes or one
        string of names, "c03 c11") or one per row ((rows, M) codes or (rows,) strings)."""
        if intent is None:
            return None
        if self.item_category is None:
            raise DataError("this world.npz has no item categories (simulated before sessions): it takes no intent")
        codes = np.asarray(intent)
        if codes.dtype.kind in "OUS":  # names: one string ("c03 c11") for all rows, or one per row
            parsed = parse_intents(codes.ravel())
            codes = parsed[0] if codes.ndim == 0 else parsed
        codes = np.atleast_1d(codes).astype(np.int64)
        if codes.ndim == 1:
            codes = np.broadcast_to(codes, (rows, len(codes)))
        if codes.shape[0] != rows or codes.ndim != 2:
            raise ValueError(f"intent {codes.shape}: one intent for all, or one per row ({rows})")
        if codes.size and codes.max() >= len(self.category_centre):
            raise DataError(f"intent category out of range 0..{len(self.category_centre) - 1}")
        return codes

    def draw_intent(self, u: np.ndarray, at, rng: np.random.Generator) -> np.ndarray:
        """(n, MAX_INTENT) category codes (-1: none) of new sessions of user rows `u` at `at`: 1 or 2
        categories, by INTENT_SHARPNESS × taste · category centre + log category size."""
        if self.item_category is None:
            raise DataError("this world.npz has no item categories (simulated before sessions): it takes no intent")
        sizes = np.bincount(self.item_category, minlength=len(self.category_centre)).astype(np.float64)
        with np.errstate(divide="ignore"):
            logits = INTENT_SHARPNESS * (self.taste(u, at) @ self.category_centre.T) + np.log(sizes)
        keys = logits + rng.gumbel(size=logits.shape)
        top = np.argsort(-keys, axis=1, kind="stable")[:, :MAX_INTENT]
        wanted = 1 + (rng.random(len(top)) < 0.5).astype(np.int64)   # 1 or 2 categories
        top[np.arange(MAX_INTENT)[None, :] >= wanted[:, None]] = -1
        top[~np.isfinite(np.take_along_axis(logits, np.maximum(top, 0), axis=1))] = -1  # empty categories
        return top

    # ---- truth on row indices --------------------------------------------------------
    def _affinity(self, u: np.ndarray, i: np.ndarray, at=None, chunk: int = 1 << 20) -> np.ndarray:
        out = np.empty(len(u), np.float32)
        at = None if at is None else np.broadcast_to(np.asarray(at, np.float64), u.shape)
        for s in range(0, len(u), chunk):
            taste = self.taste(u[s:s + chunk], None if at is None else at[s:s + chunk])
            out[s:s + chunk] = np.einsum("nd,nd->n", taste, self.item_taste[i[s:s + chunk]])
        return out

    # The truth equations, the one place they are written. Arguments broadcast: aff (..., n),
    # items i (n,), `intended` (..., n) whether the item is of the session's intent (None: no
    # intent), the user's propensity `bias` and price sensitivity `sens` (..., 1) or (n,).
    def click_logit(self, aff, i, intended=None):
        p = self.params
        logit = p["a0"] + p["tau"] * aff + p["beta"] * self.item_pop_z[i]
        return logit if intended is None else logit + p["gamma"] * intended

    def conv_logit(self, aff, i, bias, sens):
        p = self.params
        return (p["c0"] + bias - sens * self.item_log_price[i]
                + p["kappa"] * self.item_quality[i] + p["eta"] * aff)

    def _intended(self, i: np.ndarray, codes: np.ndarray | None) -> np.ndarray | None:
        """Pairs: (n,) whether item row i[n] is of codes[n]'s categories."""
        if codes is None:
            return None
        return (self.item_category[i][:, None] == codes).any(axis=1)

    def _probs(self, u: np.ndarray, i: np.ndarray, at=None, codes: np.ndarray | None = None):
        aff = self._affinity(u, i, at)
        return (sigmoid(self.click_logit(aff, i, self._intended(i, codes))).astype(np.float32),
                sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u], self.user_price_sens[u])).astype(np.float32))

    # ---- truth on ids ------------------------------------------------------------------
    def _pairs(self, user_ids, item_ids) -> tuple[np.ndarray, np.ndarray]:
        u = _indices(user_ids, self.n_users, "user")
        i = _indices(item_ids, self.n_items, "item")
        if u.shape != i.shape:
            raise ValueError(f"user_ids {u.shape} and item_ids {i.shape} differ in shape")
        return u.ravel(), i.ravel()

    def p_click(self, user_ids, item_ids, at=None, intent=None) -> np.ndarray:
        """True click probability of each (user, item) pair (vectorised) at `at` (epoch seconds, one
        or one per pair; None: the end of the period) in a session after `intent` (category codes or
        names, one intent or one per pair; None: no intent)."""
        u, i = self._pairs(user_ids, item_ids)
        intended = self._intended(i, self.intent_codes(intent, len(u)))
        return sigmoid(self.click_logit(self._affinity(u, i, at), i, intended)).astype(np.float32)

    def p_conversion(self, user_ids, item_ids, at=None, intent=None) -> np.ndarray:
        """True conversion probability given a click (the intent changes clicks only)."""
        u, i = self._pairs(user_ids, item_ids)
        aff = self._affinity(u, i, at)
        return sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u], self.user_price_sens[u])).astype(np.float32)

    def p_ctcvr(self, user_ids, item_ids, at=None, intent=None) -> np.ndarray:
        """True probability that an exposure converts: p_click * p_conversion."""
        u, i = self._pairs(user_ids, item_ids)
        click, conv = self._probs(u, i, at, self.intent_codes(intent, len(u)))
        return click * conv

    def matrix(self, user_ids, what: str = "ctcvr", item_ids=None, at=None, intent=None) -> np.ndarray:
        """(len(user_ids), n_items) true probabilities; columns are item ids 1..I in order
        (or `item_ids` in their order). what: ctr | cvr | ctcvr. `at` (one time or one per user) and
        `intent` (one or one per user) as in p_click. Keep user_ids to a chunk."""
        if what not in ("ctr", "cvr", "ctcvr"):
            raise ValueError(f"what must be ctr, cvr or ctcvr, not {what!r}")
        u = _indices(user_ids, self.n_users, "user").ravel()
        i = np.arange(self.n_items) if item_ids is None else _indices(item_ids, self.n_items, "item").ravel()
        aff = self.taste(u, at) @ self.item_taste[i].T
        codes = self.intent_codes(intent, len(u))
        out = None
        if what in ("ctr", "ctcvr"):
            intended = None if codes is None else (self.item_category[i][None, :, None] == codes[:, None, :]).any(2)
            out = sigmoid(self.click_logit(aff, i, intended))
        if what in ("cvr", "ctcvr"):
            conv = sigmoid(self.conv_logit(aff, i, self.user_conv_bias[u][:, None], self.user_price_sens[u][:, None]))
            out = conv if out is None else out * conv
        return out.astype(np.float32)

    def iter_matrix(self, user_ids, what: str = "ctcvr", item_ids=None, chunk: int = 256, at=None):
        """Yields (user_ids chunk, matrix of that chunk) over all of `user_ids`, at one time `at`."""
        user_ids = np.asarray(user_ids)
        for s in range(0, len(user_ids), chunk):
            part = user_ids[s:s + chunk]
            yield part, self.matrix(part, what, item_ids, at)


def category_names(codes: np.ndarray) -> np.ndarray:
    """Category codes -> the items table's names ("c03")."""
    return np.char.add("c", np.char.zfill(np.asarray(codes).astype(str), 2))


def intent_names(codes: np.ndarray) -> np.ndarray:
    """(n, M) intents (-1: none) -> (n,) strings of category names joined by spaces ("c03 c11")."""
    codes = np.asarray(codes)
    out = np.full(len(codes), "", dtype=object)
    for m in range(codes.shape[1]):
        valid = codes[:, m] >= 0
        names = category_names(np.maximum(codes[:, m], 0)).astype(object)
        out[valid] = np.where(out[valid] == "", names[valid], out[valid] + " " + names[valid])
    return out


def parse_intents(strings) -> np.ndarray:
    """intent_names' strings -> (n, MAX_INTENT) category codes (-1: none)."""
    out = np.full((len(strings), MAX_INTENT), -1, np.int64)
    for r, text in enumerate(strings):
        for m, name in enumerate(str(text).split()[:MAX_INTENT]):
            if not (name[:1] == "c" and name[1:].isdigit()):
                raise DataError(f"intent {text!r}: category names are c00, c01, ...")
            out[r, m] = int(name[1:])
    return out


# ---- generation --------------------------------------------------------------------------
def _rng(seed: int, *stream: int) -> np.random.Generator:
    return np.random.default_rng([int(seed), *stream])


def make_world(n_users: int, n_items: int, seed: int = 0,
               funnel: str = "realistic") -> tuple[World, pd.DataFrame, pd.DataFrame]:
    """(world, users table, items table) with the realistic profile's default feature names;
    `funnel` (a FUNNELS key) sets the click and conversion rates, nothing else."""
    if n_users < 1 or n_items < 1:
        raise ValueError("need at least one user and one item")
    if funnel not in FUNNELS:
        raise ValueError(f"unknown funnel {funnel!r}; expected one of {sorted(FUNNELS)}")
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

    # drift: a random walk backwards from the end of the period (where the offset is zero), from
    # its own stream so the rest of the world is what it was before time was simulated
    g = _rng(seed, 4)
    drift = np.empty((n_users, KNOTS - 1, DIM), np.float16)
    for s in range(0, n_users, CHUNK):  # in blocks: a million users' steps at once would take gigabytes
        steps = g.standard_normal((min(CHUNK, n_users - s), KNOTS - 1, DIM), dtype=np.float32)
        drift[s:s + CHUNK] = np.cumsum(steps[:, ::-1] * np.float32(DRIFT / np.sqrt(DIM * (KNOTS - 1))), axis=1)[:, ::-1]

    world = World(
        user_taste=user_taste, user_price_sens=price_sens.astype(np.float32),
        user_conv_bias=conv_bias.astype(np.float32), user_activity=activity / activity.sum(),
        item_taste=item_taste, item_pop_z=pop_z.astype(np.float32), item_popularity=weight / weight.sum(),
        item_log_price=(np.log(price) - np.log(price).mean()).astype(np.float32),
        item_quality=quality.astype(np.float32), user_taste_centre=taste_centre.astype(np.float32),
        user_price_sens_base=sens_base.astype(np.float32), user_conv_bias_base=conv_base.astype(np.float32),
        user_drift=drift, period=np.array([T0, SPAN], np.float64), item_category=category.astype(np.int64),
        category_centre=cat_centres.astype(np.float32), params=PARAMS | FUNNELS[funnel])
    users = pd.DataFrame({"user_id": np.arange(1, n_users + 1), "age": age,
                          "region": np.asarray(REGIONS)[region], "device": np.asarray(DEVICES)[device]})
    width = len(str(n_brands - 1))
    brand_names = np.char.add("b", np.char.zfill(np.arange(n_brands).astype(str), width))
    items = pd.DataFrame({"item_id": np.arange(1, n_items + 1), "category": category_names(category),
                          "brand": brand_names[brand], "price": price})
    return world, users, items


def _draw(cdf: np.ndarray, u: np.ndarray) -> np.ndarray:
    return np.minimum(np.searchsorted(cdf, u * cdf[-1], side="right"), len(cdf) - 1)


class _CategoryDraw:
    """Items of given categories by popularity: one cumulative weight over items sorted by category."""

    def __init__(self, world: World):
        self.order = np.argsort(world.item_category, kind="stable")
        self.cdf = np.cumsum(world.item_popularity[self.order])
        cats = world.item_category[self.order]
        n = len(world.category_centre)
        self.lo = np.searchsorted(cats, np.arange(n), side="left")
        self.hi = np.searchsorted(cats, np.arange(n), side="right")

    def __call__(self, categories: np.ndarray, r: np.ndarray) -> np.ndarray:
        lo, hi = self.lo[categories], self.hi[categories]   # categories drawn by draw_intent have items
        base = np.where(lo > 0, self.cdf[np.maximum(lo - 1, 0)], 0.0)
        x = base + r * (self.cdf[hi - 1] - base)
        return self.order[np.clip(np.searchsorted(self.cdf, x, side="right"), lo, hi - 1)]


def _sessions(g: np.random.Generator, m: int) -> np.ndarray:
    """Lengths (geometric, mean SESSION_ROWS) of the sessions that make up m rows; the last cut to fit."""
    lengths = g.geometric(1.0 / SESSION_ROWS, size=int(m / SESSION_ROWS * 1.5) + 16)
    while lengths.sum() < m:
        lengths = np.concatenate([lengths, g.geometric(1.0 / SESSION_ROWS, size=len(lengths))])
    ends = np.cumsum(lengths)
    last = int(np.searchsorted(ends, m))
    lengths = lengths[:last + 1].copy()
    lengths[-1] -= ends[last] - m
    return lengths


def exposures(world: World, n: int, seed: int = 0, progress: bool = True) -> tuple[pd.DataFrame, pd.DataFrame]:
    """(interactions, truth), row-aligned and in time order; generated in fixed-size chunks of sessions
    from per-chunk streams. The truth holds each row's probabilities at its time and intent."""
    user_cdf = np.cumsum(world.user_activity)
    item_cdf = np.cumsum(world.item_popularity)
    by_category = _CategoryDraw(world)
    tau = world.params["tau"]
    t0, span = world.period
    out = {k: np.empty(n, t) for k, t in (("u", np.int64), ("i", np.int64), ("click", np.int8), ("would", np.int8),
                                           ("pc", np.float32), ("pv", np.float32), ("t", np.int64),
                                           ("session", np.int64))}
    intents = []
    n_chunks = -(-n // CHUNK)
    bar = Progress(n, "simulate: exposures", "rows") if progress and n_chunks > 1 else None
    for c in range(n_chunks):
        s, e = c * CHUNK, min(n, (c + 1) * CHUNK)
        m = e - s
        g = _rng(seed, 3, c)
        lengths = _sessions(g, m)
        first = np.cumsum(lengths) - lengths
        session = np.repeat(np.arange(len(lengths)), lengths)
        su = _draw(user_cdf, g.random(len(lengths)))
        start = g.random(len(lengths)) * (span - 3600.0)   # sessions end within the period
        gaps = g.exponential(SESSION_GAP, m)
        gaps[first] = 0.0
        elapsed = np.cumsum(gaps)
        t = (t0 + np.minimum(start[session] + elapsed - elapsed[first][session], span)).astype(np.int64)
        intent = world.draw_intent(su, t0 + start, g)
        u = su[session]
        browse = g.random(m) < BROWSE_SHARE
        targeted = ~browse & (g.random(m) < TARGETED_SHARE)
        i = _draw(item_cdf, g.random(m))
        tg = np.flatnonzero(targeted)
        if len(tg):
            cand = g.integers(0, world.n_items, (len(tg), CANDIDATES))
            aff = np.einsum("nd,ncd->nc", world.taste(u[tg], t[tg]), world.item_taste[cand])
            pick = np.argmax(tau * aff + g.gumbel(size=aff.shape), axis=1)
            i[tg] = cand[np.arange(len(tg)), pick]
        b = np.flatnonzero(browse)
        if len(b):
            own = intent[session[b]]
            which = (g.random(len(b)) * (own >= 0).sum(axis=1)).astype(np.int64)
            i[b] = by_category(own[np.arange(len(b)), which], g.random(len(b)))
        pc, pv = world._probs(u, i, t, intent[session])
        out["u"][s:e], out["i"][s:e], out["pc"][s:e], out["pv"][s:e], out["t"][s:e] = u, i, pc, pv, t
        out["session"][s:e] = c * CHUNK + session   # unique: a chunk has at most CHUNK sessions
        out["click"][s:e] = g.random(m) < pc
        out["would"][s:e] = g.random(m) < pv
        intents.append(intent_names(intent))
        if bar is not None:
            bar.update(m)
    if bar is not None:
        bar.close()
    order = np.argsort(out["t"], kind="stable")
    out = {k: v[order] for k, v in out.items()}
    # Sessions numbered in the order they start; their intents as category names.
    _, firsts, inverse = np.unique(out["session"], return_index=True, return_inverse=True)
    rank = np.empty(len(firsts), np.int64)
    rank[np.argsort(firsts, kind="stable")] = np.arange(len(firsts))
    names = np.concatenate(intents) if intents else np.empty(0, object)
    chunk_of = out["session"] // CHUNK
    offsets = np.concatenate([[0], np.cumsum([len(x) for x in intents])])
    intent_col = names[offsets[chunk_of] + out["session"] % CHUNK] if n else names
    interactions = pd.DataFrame({
        "user_id": out["u"] + 1, "item_id": out["i"] + 1, "click": out["click"],
        "conversion": out["click"] * out["would"], "timestamp": out["t"],
    })
    truth = pd.DataFrame({"p_click": out["pc"], "p_conversion": out["pv"], "conversion_if_clicked": out["would"],
                          "session": rank[inverse], "intent": intent_col})
    return interactions, truth
