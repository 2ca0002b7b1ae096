"""Item attributes by index row, and request filters compiled against them into row sets.

    ItemAttributes   built once at load from the catalogue aligned to index rows:
                     per id/categorical attribute a per-row code column and value -> sorted rows;
                     per numeric attribute a per-row float column and its (value, row) pairs sorted
                     by value; an `available` mask (rows never eligible when False)
    compile(...)     filters + exclude_items + include_items -> RowSet (the eligible rows, their count)

A request's filter is evaluated on precomputed arrays (no pandas per request): a selective
condition starts from its own rows (a posting list, or a slice of the sorted numeric pairs) and
the other conditions are checked on those rows only; a broad one becomes a boolean mask over
all rows. New items are appended (`append`); a row's availability is flipped in place.
Values are compared as the data files hold them: ids and categories as strings (1 and "1" are
the same), numerics as floats.
"""

from __future__ import annotations

import math
from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

from recsys.artifacts.feature_store import shared_strings
from recsys.artifacts.features import Feature
from recsys.artifacts.growing import Growing
from recsys.artifacts.positions import Positions
from recsys.service.domain import InvalidRequest

# Longest exclude_items / include_items list a request may send: each id costs a dict lookup,
# and a client re-ranking more than this should page its list.
MAX_ITEM_LIST = 1000
# Below this many rows a condition is evaluated on row arrays (cost ~ its rows), above it as
# a boolean mask over the catalogue (cost ~ the catalogue, but vectorised).
ROW_ARRAY_MAX = 65_536


@dataclass(frozen=True)
class Condition:
    """One parsed condition: `values` for in/not_in (strings), `low`/`high` for a range."""

    attribute: str
    op: str                          # "in" | "not_in" | "range"
    values: tuple[str, ...] = ()
    low: float = -math.inf
    high: float = math.inf


@dataclass
class RowSet:
    """Eligible index rows: a sorted int64 array, or a boolean mask (N,) when that was cheaper."""

    count: int
    rows: np.ndarray | None = None   # (count,) sorted, when small or forced by include_items
    mask: np.ndarray | None = None   # (N,) bool, when broad; read only (may be the catalogue's own)

    def as_rows(self) -> np.ndarray:
        return self.rows if self.rows is not None else np.flatnonzero(self.mask)

    def as_mask(self, n: int) -> np.ndarray:
        if self.mask is not None:
            return self.mask
        mask = np.zeros(n, bool)
        mask[self.rows] = True
        return mask


class _Categorical:
    """An id or categorical attribute: codes (N,) int32 into `values`, value -> sorted rows.

    The rows of each value are a slice of one array sorted by code (built once, at the first
    append: a few bytes a row even for an id attribute, where every value has one row), plus
    the rows appended since (upserts: few), per code.
    """

    def __init__(self):
        self.values: list[str] = []
        self.code_of = Positions(np.empty(0, object))
        self._codes = Growing(np.empty(0, np.int32))
        self._order = np.empty(0, np.int64)      # rows sorted by code (the first append's)
        self._starts = np.zeros(1, np.int64)     # code -> its slice of _order
        self._appended: dict[int, np.ndarray] = {}  # code -> sorted rows appended later

    @property
    def codes(self) -> np.ndarray:
        """(N,) int32: each row's code into `values`."""
        return self._codes.array

    def append(self, raw: np.ndarray, start: int, distinct: Positions | None = None) -> None:
        """Rows `start`.. hold `raw`; `distinct`: the map of `raw` itself (distinct ids, first
        append only), shared rather than built again (~33 bytes an id)."""
        if not len(self._codes) and not self.values:
            if distinct is not None and len(distinct) == len(raw) and (not len(raw) or distinct.get(raw[-1]) == len(raw) - 1):
                codes, self.values, self.code_of = np.arange(len(raw), dtype=np.int32), list(raw), Positions(distinct)
            else:
                codes, uniques = pd.factorize(raw)
                self.values = uniques.tolist() if isinstance(uniques, pd.Index) else list(uniques)
                self.code_of = Positions(np.asarray(uniques, dtype=object))
            codes = codes.astype(np.int32, copy=False)
            self._codes = Growing(codes)
            self._order = np.argsort(codes, kind="stable").astype(np.int64) + start
            self._starts = np.concatenate([[0], np.cumsum(np.bincount(codes, minlength=len(self.values)))])
            return
        codes = np.empty(len(raw), np.int32)
        for i, v in enumerate(raw):
            c = self.code_of.get(v)
            if c is None:
                c = len(self.values)
                self.code_of.add(v, c)
                self.values.append(v)
            codes[i] = c
        self._codes.extend(codes)
        # New rows are all after the old ones, so appending keeps each value's rows sorted.
        order = np.argsort(codes, kind="stable")
        bounds = np.flatnonzero(np.diff(codes[order])) + 1
        for group in (np.split(order, bounds) if len(order) else []):
            c = int(codes[group[0]])
            self._appended[c] = np.concatenate([self._appended.get(c, np.empty(0, np.int64)),
                                                group.astype(np.int64) + start])

    def _postings(self, code: int) -> np.ndarray:
        base = self._order[self._starts[code]:self._starts[code + 1]] if code + 1 < len(self._starts) else None
        extra = self._appended.get(code)
        if extra is None:
            return base if base is not None else np.empty(0, np.int64)
        return extra if base is None else np.concatenate([base, extra])

    def rows(self, values: Sequence[str]) -> np.ndarray:
        parts = [self._postings(c) for c in (self.code_of.get(v) for v in values) if c is not None]
        if not parts:
            return np.empty(0, np.int64)
        return parts[0] if len(parts) == 1 else np.sort(np.concatenate(parts))

    def count(self, values: Sequence[str]) -> int:
        return sum(len(self._postings(c)) for c in (self.code_of.get(v) for v in values) if c is not None)

    def test(self, rows: np.ndarray, values: Sequence[str]) -> np.ndarray:
        wanted = [c for c in (self.code_of.get(v) for v in values) if c is not None]
        return np.isin(self.codes[rows], wanted)


class _Numeric:
    """A numeric attribute: values (N,) float32 (as the catalogue stores them), and (value, row)
    pairs sorted by value; bounds are compared at the same precision.

    Rows appended later go to a small sorted tail, merged into the main pairs once it holds
    1/64 of them: an upsert then costs its own rows, not a copy of the N pairs.
    """

    def __init__(self):
        self._values = Growing(np.empty(0, np.float32))
        self._sorted_values = np.empty(0, np.float32)
        self._sorted_rows = np.empty(0, np.int64)
        self._tail_values = np.empty(0, np.float32)
        self._tail_rows = np.empty(0, np.int64)

    @property
    def values(self) -> np.ndarray:
        return self._values.array

    def append(self, raw: np.ndarray, start: int) -> None:
        new = np.asarray(raw, np.float32)
        self._values.extend(new)
        order = np.argsort(new, kind="stable")
        at = np.searchsorted(self._tail_values, new[order], side="right")
        self._tail_values = np.insert(self._tail_values, at, new[order])
        self._tail_rows = np.insert(self._tail_rows, at, order.astype(np.int64) + start)
        if len(self._tail_values) > max(1024, len(self._sorted_values) // 64):
            at = np.searchsorted(self._sorted_values, self._tail_values, side="right")
            self._sorted_values = np.insert(self._sorted_values, at, self._tail_values)
            self._sorted_rows = np.insert(self._sorted_rows, at, self._tail_rows)
            self._tail_values, self._tail_rows = self._tail_values[:0], self._tail_rows[:0]

    def count(self, low: float, high: float) -> int:
        """How many rows hold a value in [low, high]."""
        return sum(b - a for a, b in self._spans(low, high))

    def rows(self, low: float, high: float) -> np.ndarray:
        """Sorted rows holding a value in [low, high]."""
        (a, b), (c, d) = self._spans(low, high)
        return np.sort(np.concatenate([self._sorted_rows[a:b], self._tail_rows[c:d]]))

    def _spans(self, low: float, high: float) -> list[tuple[int, int]]:
        bounds = (np.float32(low), np.float32(high))
        return [(int(np.searchsorted(v, bounds[0], side="left")), int(np.searchsorted(v, bounds[1], side="right")))
                for v in (self._sorted_values, self._tail_values)]

    def test(self, rows: np.ndarray, low: float, high: float) -> np.ndarray:
        v = self.values[rows]
        return (v >= np.float32(low)) & (v <= np.float32(high))


def _strings(values) -> np.ndarray:
    """The values as an object array of str (the array itself when it is one already)."""
    if isinstance(values, np.ndarray) and values.dtype == object and all(type(v) is str for v in values):
        return values
    return shared_strings(values)


class ItemAttributes:
    """The catalogue's attributes by index row (N rows), for filters, diversity and `fields`."""

    def __init__(self, features: Sequence[Feature], frame: pd.DataFrame | None = None,
                 ids: Positions | None = None):
        """`features`: the item tower's features (item_id among them); `frame`: one row per index
        row, in row order, with a column per feature; `ids`: the frame's item ids as a map, when
        the caller holds one (shared, not built again)."""
        self.features = {f.name: f for f in features}
        self.features.setdefault("item_id", Feature("item_id", "item", "id"))
        self._columns = {f.name: (_Numeric() if f.is_numeric else _Categorical()) for f in features}
        self._available = Growing(np.empty(0, bool))
        self._unavailable = 0
        if frame is not None:
            self.append(frame, ids)

    def __len__(self) -> int:
        return len(self._available)

    @property
    def available(self) -> np.ndarray:
        """(N,) bool, False = never eligible; change it with set_available."""
        return self._available.array

    def append(self, frame: pd.DataFrame | Mapping[str, np.ndarray], ids: Positions | None = None) -> np.ndarray:
        """Add rows (available) at the end, one per frame row in order; their row numbers.
        `frame`: a DataFrame or equal-length columns by name (object arrays of str are kept as
        they are: the catalogue's own strings, not copies); `ids`: the map of its item ids, on
        the first append (see __init__)."""
        start = len(self)
        count = 0
        for name, column in self._columns.items():
            values = frame[name]
            count = len(values)
            if self.features[name].is_numeric:
                column.append(np.asarray(values, np.float32), start)
            else:
                column.append(_strings(values), start, ids if name == "item_id" else None)
        self._available.extend(np.ones(count, bool))
        return np.arange(start, len(self), dtype=np.int64)

    def set_available(self, rows: np.ndarray | Sequence[int], available: bool) -> None:
        """Make `rows` eligible again (True) or never eligible (False: out of stock, deleted)."""
        rows = np.unique(np.asarray(rows, np.int64))
        changed = int(np.count_nonzero(self.available[rows] != available))  # counted on these rows, not N
        self.available[rows] = available
        self._unavailable += -changed if available else changed

    @property
    def unavailable_share(self) -> float:
        """The share of rows never eligible (out of stock, deleted, replaced)."""
        return self._unavailable / max(1, len(self))

    @property
    def all_available(self) -> bool:
        """Every row eligible: an unfiltered request may then search the whole index."""
        return self._unavailable == 0

    def rows_of(self, item_ids: Sequence) -> np.ndarray:
        """Rows of the given item ids (strings or ints; unknown ids ignored), sorted, unique."""
        return np.unique(self._columns["item_id"].rows([str(i) for i in item_ids]))

    def value(self, name: str, row: int):
        """The raw value of one attribute at one row: a str, or a float for a numeric."""
        column = self._columns[name]
        if isinstance(column, _Numeric):
            return float(str(column.values[row]))  # the float32's shortest form: 19.99, not 19.9899997
        return column.values[column.codes[row]]

    def category_codes(self, name: str) -> np.ndarray:
        """(N,) int32 codes of a categorical attribute (equal codes = equal values)."""
        return self._columns[name].codes

    # -- parsing ---------------------------------------------------------------------------

    def parse(self, filters: Mapping[str, Mapping] | None) -> list[Condition]:
        """Validated conditions; InvalidRequest naming the first bad one (`filters.NAME: ...`)."""
        out = []
        for name, cond in (filters or {}).items():
            where = f"filters.{name}"
            feature = self.features.get(name)
            if feature is None:
                raise InvalidRequest(f"{where}: unknown item attribute; expected one of {sorted(self.features)}")
            if not isinstance(cond, Mapping) or not cond:
                raise InvalidRequest(f"{where}: empty condition; expected {{'in': [...]}}, {{'not_in': [...]}} "
                                     "or {'gte': x, 'lte': y}")
            keys = set(cond)
            if feature.is_numeric:
                if keys - {"gte", "lte"}:
                    raise InvalidRequest(f"{where}: a numeric attribute takes 'gte' and/or 'lte' "
                                         f"(got {sorted(keys)})")
                low, high = cond.get("gte"), cond.get("lte")
                if low is None and high is None:
                    raise InvalidRequest(f"{where}: give 'gte', 'lte' or both")
                for bound in (low, high):
                    if bound is not None and (isinstance(bound, bool) or not isinstance(bound, (int, float))
                                              or not math.isfinite(bound)):
                        raise InvalidRequest(f"{where}: bounds must be finite numbers (got {bound!r})")
                low = -math.inf if low is None else float(low)
                high = math.inf if high is None else float(high)
                if high < low:
                    raise InvalidRequest(f"{where}: 'lte' {high:g} is below 'gte' {low:g}")
                out.append(Condition(name, "range", low=low, high=high))
            else:
                if len(keys) != 1 or not keys <= {"in", "not_in"}:
                    raise InvalidRequest(f"{where}: an id or categorical attribute takes exactly one of "
                                         f"'in' or 'not_in' (got {sorted(keys)})")
                (op,) = keys
                values = cond[op]
                if not isinstance(values, (list, tuple)) or not values:
                    raise InvalidRequest(f"{where}.{op}: expected a non-empty list of values")
                if len(values) > MAX_ITEM_LIST:
                    raise InvalidRequest(f"{where}.{op}: at most {MAX_ITEM_LIST} values (got {len(values)})")
                for v in values:
                    if isinstance(v, bool) or not isinstance(v, (str, int)):
                        raise InvalidRequest(f"{where}.{op}: values are strings or integers (got {v!r})")
                out.append(Condition(name, op, values=tuple(str(v) for v in values)))
        return out

    def check_categorical(self, name: str, where: str) -> None:
        feature = self.features.get(name)
        if feature is None or feature.is_numeric:
            kinds = sorted(n for n, f in self.features.items() if not f.is_numeric)
            raise InvalidRequest(f"{where}: not a categorical item attribute; expected one of {kinds}")

    def check_names(self, names: Sequence[str], where: str) -> None:
        for name in names:
            if name not in self.features:
                raise InvalidRequest(f"{where}: unknown item attribute {name!r}; expected one of "
                                     f"{sorted(self.features)}")

    # -- compiling -------------------------------------------------------------------------

    def _count(self, c: Condition) -> int:
        column = self._columns[c.attribute]
        if c.op == "range":
            return column.count(c.low, c.high)
        n = column.count(c.values)
        return n if c.op == "in" else len(self) - n

    def _rows(self, c: Condition) -> np.ndarray:
        column = self._columns[c.attribute]
        if c.op == "range":
            return column.rows(c.low, c.high)
        return column.rows(c.values)  # "in"; not_in is never a starting set (it is broad)

    def _test(self, c: Condition, rows: np.ndarray) -> np.ndarray:
        column = self._columns[c.attribute]
        if c.op == "range":
            return column.test(rows, c.low, c.high)
        hit = column.test(rows, c.values)
        return hit if c.op == "in" else ~hit

    def _mask(self, c: Condition) -> np.ndarray:
        column = self._columns[c.attribute]
        if c.op == "range":
            return column.test(slice(None), c.low, c.high)
        if c.op == "in" and self._count(c) <= ROW_ARRAY_MAX:
            mask = np.zeros(len(self), bool)
            mask[column.rows(c.values)] = True
            return mask
        hit = column.test(slice(None), c.values)
        return hit if c.op == "in" else ~hit

    def share(self, conditions: Sequence[Condition] = ()) -> float:
        """The expected share of rows eligible under `conditions` (available ones; conditions
        taken as independent), from counts alone: microseconds, no row is touched."""
        n = max(1, len(self))
        share = (len(self) - self._unavailable) / n
        for c in conditions:
            share *= self._count(c) / n
        return share

    def accepts(self, conditions: Sequence[Condition], rows: np.ndarray, exclude_items: Sequence = (),
                exclude_rows: np.ndarray | None = None) -> np.ndarray:
        """(M,) bool: which of `rows` a request with these restrictions may return (compile's
        rule, tested on these rows only: the cost of a post-filter is its candidates, not N)."""
        keep = self.available[rows]
        for c in conditions:
            keep &= self._test(c, rows)
        excluded = self._excluded(exclude_items, exclude_rows)
        if excluded is not None and len(excluded):
            keep &= ~np.isin(rows, excluded)
        return keep

    def _excluded(self, exclude_items: Sequence, exclude_rows: np.ndarray | None) -> np.ndarray | None:
        excluded = self.rows_of(exclude_items) if exclude_items else None
        if exclude_rows is not None and len(exclude_rows):
            excluded = exclude_rows if excluded is None else np.union1d(excluded, exclude_rows)
        return excluded

    def excluded_rows(self, exclude_items: Sequence = (), exclude_rows: np.ndarray | None = None) -> np.ndarray:
        """Sorted rows of `exclude_items` (unknown ids ignored) and `exclude_rows` together."""
        excluded = self._excluded(exclude_items, exclude_rows)
        return np.empty(0, np.int64) if excluded is None else excluded

    def matching(self, conditions: Sequence[Condition]) -> np.ndarray:
        """Sorted rows (M,) matching every condition, available or not: the rows stay what they
        are (rows are only appended), so this can be kept for the next request with the same
        conditions; availability is applied per request."""
        rest = list(conditions)
        counts = [self._count(c) if c.op != "not_in" else math.inf for c in rest]
        if rest and min(counts) <= ROW_ARRAY_MAX:
            start = self._rows(rest.pop(int(np.argmin(counts))))
            return start[self.matches(rest, start)]
        mask = np.ones(len(self), bool)
        for c in rest:
            mask &= self._mask(c)
        return np.flatnonzero(mask)

    def matches(self, conditions: Sequence[Condition], rows: np.ndarray) -> np.ndarray:
        """(M,) bool: which of `rows` match every condition (availability aside)."""
        keep = np.ones(len(rows), bool)
        for c in conditions:
            keep &= self._test(c, rows)
        return keep

    def compile(self, conditions: Sequence[Condition] = (), exclude_items: Sequence = (),
                include_items: Sequence | None = None, exclude_rows: np.ndarray | None = None) -> RowSet:
        """The rows eligible for a request: available, matching every condition, in
        `include_items` when given, not in `exclude_items` (unknown ids ignored) nor `exclude_rows`."""
        excluded = self._excluded(exclude_items, exclude_rows)
        start: np.ndarray | None = None
        rest = list(conditions)
        if include_items is not None:
            start = self.rows_of(include_items)
        elif rest:
            # A not_in is never a starting set: its rows are everything but a few postings.
            counts = [self._count(c) if c.op != "not_in" else math.inf for c in rest]
            best = int(np.argmin(counts))
            if counts[best] <= ROW_ARRAY_MAX:
                start = self._rows(rest.pop(best))
        if start is not None:
            keep = self.available[start]
            for c in rest:
                keep &= self._test(c, start)
            rows = start[keep]
            if excluded is not None and len(excluded):
                rows = rows[~np.isin(rows, excluded)]
            return RowSet(len(rows), rows=rows)
        if not rest and (excluded is None or not len(excluded)) and len(self) - self._unavailable > ROW_ARRAY_MAX:
            # Only items out of stock restrict this request: the availability mask itself (read
            # only), not a copy and a count per request (~1 ms at 10M rows).
            return RowSet(len(self) - self._unavailable, mask=self.available)
        mask = self.available.copy()
        for c in rest:
            mask &= self._mask(c)
        if excluded is not None and len(excluded):
            mask[excluded] = False
        count = int(np.count_nonzero(mask))
        if count <= ROW_ARRAY_MAX:
            return RowSet(count, rows=np.flatnonzero(mask))
        return RowSet(count, mask=mask)
