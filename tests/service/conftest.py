"""A `recsys serve` with default settings (but max_k 200) on the session's trained artifacts, and
the same model indexed with each index kind."""

from __future__ import annotations

import json

import httpx
import pytest

from recsys.artifacts import version as layout
from tests.artifacts.versions import clone_version
from tests.conftest import recsys
from tests.service.servers import MAX_K, start_serve

INDEX_KINDS = ("flat", "ivf", "hnsw")
# Every kind must find every item of the catalogue (short approximate answers are completed exactly).
EVERY_ITEM_KINDS = INDEX_KINDS
HISTORY = 10  # items the history model's user tower pools


@pytest.fixture(scope="session")
def history_root(tmp_path_factory):
    """An artifact root of a model whose user tower takes a history of HISTORY items; its data
    directory is the root's sibling `data`."""
    base = tmp_path_factory.mktemp("history")
    data, root = base / "data", base / "artifacts"
    recsys("simulate", "--profile", "realistic", "--users", "600", "--items", "200", "--interactions", "20000",
           "--out", str(data))
    recsys("train", "--data", str(data), "--out", str(root), "--epochs", "3", "--history-length", str(HISTORY))
    recsys("build-index", "--artifacts", str(root))
    return root


@pytest.fixture(scope="session")
def default_server(seed_artifacts):
    server = start_serve(seed_artifacts, RECSYS_MAX_K=str(MAX_K))
    server.wait_ready()
    yield server
    server.kill()


@pytest.fixture(scope="session")
def server(default_server):
    """An HTTP client of the default server."""
    with httpx.Client(base_url=default_server.base, timeout=10) as client:
        yield client


@pytest.fixture(scope="session")
def indexed(seed_artifacts, tmp_path_factory):
    """kind -> an artifact root whose one version is the session's model indexed as `kind`."""
    from recsys.index.build_index import build_index  # imports TensorFlow: only when a test needs it

    roots = {"flat": seed_artifacts}

    def root_of(kind: str):
        if kind not in roots:
            trained = layout.resolve(seed_artifacts, need_index=True)
            root = tmp_path_factory.mktemp(f"{kind}-artifacts")
            clone_version(trained, root, trained.name, index=False)
            build_index(root, trained.name, kind=kind)
            roots[kind] = root
        manifest = json.loads((layout.resolve(roots[kind], need_index=True) / layout.INDEX_DIR / layout.MANIFEST)
                              .read_text())
        assert manifest["kind"] == kind
        return roots[kind]

    return root_of


@pytest.fixture(scope="module")
def each_index(request, server, indexed):
    """A client of a server of the session's model under an index kind (flat: the default server);
    tests parametrize it with the kinds."""
    if request.param == "flat":
        yield server
        return
    process = start_serve(indexed(request.param), RECSYS_MAX_K=str(MAX_K))
    try:
        process.wait_ready()
        with httpx.Client(base_url=process.base, timeout=10) as client:
            yield client
    finally:
        process.kill()
