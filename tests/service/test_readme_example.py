"""README's request and response example, checked against a live server so it cannot go stale:
the same request, the same fields in the same order, the same number of items, and the
model version in the format versions are named in. Values differ by model, so they are not
compared."""

from __future__ import annotations

import json
import re

from recsys.artifacts import version as layout
from tests.conftest import ROOT


def _example() -> tuple[dict, dict]:
    text = (ROOT / "README.md").read_text()
    block = re.search(r"```sh\n\$ curl -s -X POST http://127\.0\.0\.1:8000/recommend.*?```", text, re.S)
    assert block, "README lost its /recommend example"
    body = re.search(r"-d '(\{.*?\})'", block.group(0), re.S)
    response = block.group(0).split("\n", 1)[1]
    response = response[response.index("\n{") + 1:response.rindex("```")]
    return json.loads(body.group(1)), json.loads(response)


def test_readme_example_matches_the_live_response(server, seed_artifacts):
    request, documented = _example()
    live = server.post("/recommend", json=request)
    assert live.status_code == 200, live.text
    live = live.json()
    assert list(documented) == list(live)
    assert len(documented["items"]) == len(live["items"]) == request["k"]
    assert [list(i) for i in documented["items"]] == [list(i) for i in live["items"]]
    assert documented["user_id"] == live["user_id"] == str(request["user_id"])
    assert documented["objective"] == live["objective"]
    served = layout.resolve(seed_artifacts, need_index=True).name
    assert live["model_version"] == served
    assert re.fullmatch(r"\d{8}T\d{12}", documented["model_version"]) and re.fullmatch(r"\d{8}T\d{12}", served)
