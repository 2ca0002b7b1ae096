"""The report's freshness section: the default and a 10-click history model on the same sessions."""

import re

import pytest

from recsys.artifacts.version import Version
from recsys.index.build_index import build_index
from recsys.model.evaluation.report import HISTORY, freshness_section, run_directory
from tests.conftest import recsys


@pytest.mark.slow  # trains two models
def test_the_section_measures_both_models_beside_the_references(tmp_path):
    data, work = tmp_path / "data", tmp_path / "work"
    recsys("simulate", "--profile", "realistic", "--users", "300", "--items", "300", "--interactions", "12000",
           "--seed", "6", "--out", str(data))
    for label, flags in (("default", []), (HISTORY, ["--history-length", "10"])):
        root = work / run_directory("realistic", label)
        recsys("train", "--data", str(data), "--out", str(root), "--epochs", "1", *flags)
        version = Version.open(root)
        build_index(version.path.parent, version.name)
    lines = freshness_section(data, work)
    rows = {m.group(1): (float(m.group(2)), float(m.group(3)))
            for m in (re.fullmatch(r"\| (.+?) \| ([\d.]+) \| ([\d.]+) \|", line) for line in lines) if m}
    assert list(rows) == ["default", "default, history 10", "intent-blind reference", "random"]
    assert all(0.0 <= x <= 1.0 for pair in rows.values() for x in pair)
    # A model without a history input cannot read recent_items: the same lists either way.
    assert rows["default"][0] == rows["default"][1]
    assert rows["intent-blind reference"][0] == rows["intent-blind reference"][1] < 1.0
    assert rows["random"][0] == round(20 / 297, 4)
    assert lines[0].startswith("Freshness: 300 users each start a session")  # all 300: fewer than 1,000
