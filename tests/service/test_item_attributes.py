"""Filters compiled on the attribute arrays against a pandas oracle over the same rows, for
the row-array and mask paths, before and after rows are appended and availability changes."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from recsys.artifacts.features import Feature
from recsys.artifacts.positions import Positions
from recsys.service import filters
from recsys.service.filters import ItemAttributes

N = 5_000
FEATURES = (Feature("item_id", "item", "id"), Feature("category", "item", "categorical"),
            Feature("price", "item", "numeric"))


def catalogue(n: int, start: int, seed: int) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    return pd.DataFrame({"item_id": [str(i) for i in range(start, start + n)],
                         "category": [f"c{c}" for c in rng.integers(0, 25, n)],
                         "price": rng.uniform(0, 100, n).round(2).astype(np.float32)})


def oracle(frame: pd.DataFrame, available: np.ndarray, filters_: dict, exclude=()) -> list[int]:
    keep = available.copy()
    for name, cond in filters_.items():
        col = frame[name]
        if "in" in cond:
            keep &= col.isin(cond["in"]).to_numpy()
        elif "not_in" in cond:
            keep &= ~col.isin(cond["not_in"]).to_numpy()
        else:
            keep &= ((col >= np.float32(cond.get("gte", -np.inf))) & (col <= np.float32(cond.get("lte", np.inf)))).to_numpy()
    keep &= ~frame["item_id"].isin([str(i) for i in exclude]).to_numpy()
    return np.flatnonzero(keep).tolist()


CASES = [
    {},
    {"category": {"in": ["c1", "c7"]}},
    {"category": {"not_in": ["c1"]}, "price": {"lte": 50}},
    {"price": {"gte": 10, "lte": 12.5}},
    {"item_id": {"in": ["3", "4999", "5003", "nope"]}},
    {"category": {"in": ["c24", "new"]}, "price": {"gte": 90}},
]


@pytest.mark.parametrize("shared_ids", [False, True])  # the item id map built here, or the catalogue's shared
@pytest.mark.parametrize("row_array_max", [filters.ROW_ARRAY_MAX, 100])  # row arrays; masks past 100 rows
def test_compiled_filters_match_pandas_before_and_after_appends(monkeypatch, row_array_max, shared_ids):
    monkeypatch.setattr(filters, "ROW_ARRAY_MAX", row_array_max)
    base = catalogue(N, 0, 1)
    ids = Positions(base["item_id"].to_numpy(object)) if shared_ids else None
    attrs = ItemAttributes(FEATURES, {name: (base[name].to_numpy(object) if name != "price" else base[name].to_numpy())
                                      for name in base}, ids)
    frame = base
    sizes = [40, 40, 1100, 40, 0]  # 1,100 rows: the numeric tail is merged into the sorted pairs
    starts = N + np.cumsum([0] + sizes[:-1])  # each step's first new row
    for step, size in enumerate(sizes):
        for case in CASES:
            got = attrs.compile(attrs.parse(case), exclude_items=[7, "8"])
            want = oracle(frame, attrs.available, case, exclude=[7, 8])
            assert got.count == len(want) and got.as_rows().tolist() == want, (step, case)
        if not size:
            break
        # Upserts: new ids, a new category value, an existing id's new row; and stock changes
        # (a row twice in one call, rows flipped to what they already are: counted once).
        more = catalogue(size, starts[step], 10 + step)
        more.loc[0, "category"] = "new"
        more.loc[1, "item_id"] = "3"
        rows = attrs.append(more)
        assert rows.tolist() == list(range(len(frame), len(frame) + size))
        frame = pd.concat([frame, more], ignore_index=True)
        attrs.set_available([3, 3] if step == 0 else [rows[1], rows[1]], False)
        attrs.set_available(np.arange(100, 200), step % 2 == 1)
    assert attrs.value("category", int(starts[-2])) == "new" and attrs.rows_of(["3"]).tolist() == [
        3] + [int(s) + 1 for s in starts[:-1]]  # the last step appends nothing
    assert attrs.rows_of([str(N + 2)]).tolist() == [N + 2]
    if ids is not None:  # one hash table for both maps; ids appended here stay this map's own
        assert attrs._columns["item_id"].code_of._index is ids._index
        assert len(ids) == N and str(N + 2) not in ids and ids["3"] == 3


def test_an_unrestricted_request_shares_the_availability_mask_and_sees_later_changes(monkeypatch):
    monkeypatch.setattr(filters, "ROW_ARRAY_MAX", 100)
    base = catalogue(N, 0, 2)
    attrs = ItemAttributes(FEATURES, base)
    attrs.set_available([1, 2, 3], False)
    attrs.set_available([1, 1, 2], False)  # already out of stock, and named twice: no change to the count
    attrs.set_available([10, 10], True)
    first = attrs.compile()
    assert first.count == N - 3 and not first.as_mask(N)[[1, 2, 3]].any()
    attrs.set_available([2], True)
    second = attrs.compile()
    assert second.count == N - 2 and second.as_rows().tolist() == [r for r in range(N) if r not in (1, 3)]
