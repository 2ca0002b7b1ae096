"""The import layers: service -> index -> artifacts <- model, and the CLI above them all.

Every import statement counts, inside functions too, and importing a module counts as
importing its parent packages (Python runs their __init__). The service never reaches
training code, not even through another module.
"""

from __future__ import annotations

import ast
import tomllib
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.conftest import ROOT

# Which layers each layer may import (besides its own modules and the root package). The model's
# evaluation measures the index as the service searches it, so model may use index, never service.
ALLOWED = {
    "recsys.service": {"recsys.index", "recsys.artifacts"},
    "recsys.index": {"recsys.artifacts"},
    "recsys.model": {"recsys.index", "recsys.artifacts"},
    "recsys.artifacts": set(),
    "recsys.cli": {"recsys.service", "recsys.index", "recsys.model", "recsys.artifacts"},
}
# Layers that must not reach `forbidden` even through other modules.
NEVER_REACHES = {
    "recsys.service": {"recsys.model", "recsys.cli"},
    "recsys.index": {"recsys.service", "recsys.model", "recsys.cli"},
    "recsys.artifacts": {"recsys.service", "recsys.index", "recsys.model", "recsys.cli"},
    "recsys.model": {"recsys.service", "recsys.cli"},
}
ROOT_PACKAGE = "recsys"
CLI_MODULES = {"recsys.cli", "recsys.__main__", "recsys.tensorflow_log"}  # the command line, and its stderr filter


@dataclass(frozen=True)
class Import:
    importer: str
    imported: str
    where: str  # path:line
    parent: bool = False  # a package imported on the way to one of its modules


def package_dirs(root: Path) -> dict[str, Path]:
    """Package name -> folder, as pyproject.toml's package-dir installs them."""
    config = tomllib.loads((root / "pyproject.toml").read_text())["tool"]["setuptools"]
    return {name: root / folder for name, folder in config["package-dir"].items()}


def modules(dirs: dict[str, Path]) -> dict[str, Path]:
    """Dotted module name -> source file, for every .py file of the mapped folders."""
    out = {}
    for package, folder in sorted(dirs.items(), key=lambda kv: -len(kv[0])):
        for path in sorted(folder.rglob("*.py")):
            parts = path.relative_to(folder).with_suffix("").parts
            if parts[-1] == "__init__":
                parts = parts[:-1]
            name = ".".join((package, *parts))
            out.setdefault(name, path)  # a sub-package mapped to its own folder wins
    return out


def layer(module: str) -> str:
    """The layer of a module: its sub-package of `recsys`; the CLI's modules; the root package."""
    if module == ROOT_PACKAGE:
        return ROOT_PACKAGE
    if module in CLI_MODULES:
        return "recsys.cli"
    top = ".".join(module.split(".")[:2])
    if top not in ALLOWED:
        raise AssertionError(f"{module} is in no layer: give {top} its place in ALLOWED and NEVER_REACHES")
    return top


def imports(name: str, path: Path, known: set[str], root: Path) -> list[Import]:
    """Every project module `name` imports, with where; parents of an imported module included."""
    is_package = path.name == "__init__.py"
    package = name if is_package else name.rpartition(".")[0]
    found = []
    tree = ast.parse(path.read_text(), str(path))
    # A script block (`if __name__ == "__main__":`) runs only as a program, never on import: an
    # entry point there may call the command line, which imports every layer.
    script = {id(n) for top in tree.body if _is_main_block(top) for n in ast.walk(top)}
    for node in ast.walk(tree):
        if id(node) in script:
            continue
        targets = []
        if isinstance(node, ast.Import):
            targets = [alias.name for alias in node.names]
        elif isinstance(node, ast.ImportFrom):
            base = node.module or ""
            if node.level:
                anchor = package.split(".")[: len(package.split(".")) - node.level + 1]
                base = ".".join([*anchor, base] if base else anchor)
            targets = [base, *(f"{base}.{alias.name}" for alias in node.names)]
        elif isinstance(node, ast.Call) and getattr(node.func, "attr", getattr(node.func, "id", None)) in (
                "import_module", "__import__") and node.args and isinstance(node.args[0], ast.Constant) \
                and isinstance(node.args[0].value, str):
            targets = [node.args[0].value]
        hit = {".".join(t.split(".")[:i]) for t in targets for i in range(1, t.count(".") + 2)} & known - {name}
        for module in sorted(hit):
            parent = any(other.startswith(module + ".") for other in hit)
            found.append(Import(name, module, f"{path.relative_to(root)}:{node.lineno}", parent))
    return found


def _is_main_block(node: ast.stmt) -> bool:
    test = getattr(node, "test", None)
    return isinstance(node, ast.If) and isinstance(test, ast.Compare) and isinstance(test.left, ast.Name) \
        and test.left.id == "__name__" and [getattr(c, "value", None) for c in test.comparators] == ["__main__"]


def graph(root: Path) -> list[Import]:
    """Every import between the project's modules under `root`."""
    found = modules(package_dirs(root))
    return [imp for name, path in found.items() for imp in imports(name, path, set(found), root)]


def direct_violations(edges: list[Import]) -> list[str]:
    out = []
    for e in edges:
        a, b = layer(e.importer), layer(e.imported)
        if e.parent or a == b or b == ROOT_PACKAGE:
            continue
        if a == ROOT_PACKAGE or b not in ALLOWED.get(a, set()):
            out.append(f"{e.where}: {e.importer} imports {e.imported} ({a} may import only "
                       f"{sorted(ALLOWED.get(a, set())) or 'nothing of the other layers'})")
    return out


def transitive_violations(edges: list[Import]) -> list[str]:
    """For each module, the first chain of imports that reaches a layer it must never reach."""
    succ: dict[str, list[Import]] = {}
    for e in sorted(edges, key=lambda e: e.parent):  # a chain names the module, not just its package
        succ.setdefault(e.importer, []).append(e)
    out = []
    for start in sorted(succ):
        forbidden = NEVER_REACHES.get(layer(start), set())
        if not forbidden:
            continue
        chain_to = {start: []}
        frontier = [start]
        while frontier:
            module = frontier.pop(0)
            for e in succ.get(module, []):
                if e.imported in chain_to:
                    continue
                chain_to[e.imported] = [*chain_to[module], e]
                if layer(e.imported) in forbidden:
                    chain = " -> ".join([start, *(step.imported for step in chain_to[e.imported])])
                    out.append(f"{start} reaches {layer(e.imported)}: {chain} "
                               f"(at {', '.join(step.where for step in chain_to[e.imported])})")
                    frontier = []
                    break
                frontier.append(e.imported)
    return out


def test_every_import_points_down_the_layers():
    edges = graph(ROOT)
    assert {layer(e.importer) for e in edges} >= {"recsys.service", "recsys.index", "recsys.model", "recsys.cli"}
    if bad := direct_violations(edges):
        pytest.fail("\n".join(bad), pytrace=False)


def test_the_service_never_reaches_training_code():
    if bad := transitive_violations(graph(ROOT)):
        pytest.fail("\n".join(bad), pytrace=False)


def write_tree(root: Path, files: dict[str, str]) -> None:
    mapping = {"recsys": "recsys", "recsys.artifacts": "artifacts", "recsys.model": "model",
               "recsys.index": "index", "recsys.service": "service"}
    table = ", ".join(f'"{k}" = "{v}"' for k, v in mapping.items())
    (root / "pyproject.toml").write_text(f"[tool.setuptools]\npackage-dir = {{{table}}}\n")
    for folder in mapping.values():
        (root / folder).mkdir()
        (root / folder / "__init__.py").write_text("")
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text)


@pytest.mark.parametrize("files, expected", [
    ({"service/app.py": "def f():\n    from recsys.model import metrics\n", "model/metrics.py": ""},
     ["service/app.py:2: recsys.service.app imports recsys.model.metrics"]),
    ({"index/search.py": "from ..service import app\n", "service/app.py": ""},
     ["index/search.py:1: recsys.index.search imports recsys.service.app"]),
    ({"artifacts/store.py": "import importlib\nimportlib.import_module('recsys.index.formats')\n",
      "index/formats.py": ""},
     ["artifacts/store.py:2: recsys.artifacts.store imports recsys.index.formats"]),
    ({"service/app.py": "from recsys import cli\n", "recsys/cli.py": ""},
     ["service/app.py:1: recsys.service.app imports recsys.cli"]),
    # A script block may call the command line; the same import outside it may not.
    ({"index/job.py": "if __name__ == '__main__':\n    from recsys import cli\nif True:\n    from recsys import cli\n",
      "recsys/cli.py": ""},
     ["index/job.py:4: recsys.index.job imports recsys.cli"]),
])
def test_a_wrong_import_is_reported_with_its_place(tmp_path, files, expected):
    write_tree(tmp_path, files)
    bad = direct_violations(graph(tmp_path))
    assert [line.split(" (")[0] for line in bad] == expected


def test_a_chain_through_other_modules_is_reported(tmp_path):
    """Each import allowed on its own (service -> index, model -> artifacts), the chain is not."""
    write_tree(tmp_path, {"service/app.py": "from recsys.index import search\n",
                          "index/search.py": "from recsys.artifacts import store\n",
                          "artifacts/store.py": "def load():\n    import recsys.model.train\n",
                          "model/train.py": ""})
    edges = graph(tmp_path)
    assert transitive_violations(edges)[0].startswith(
        "recsys.artifacts.store reaches recsys.model: recsys.artifacts.store -> recsys.model")
    chains = [line for line in transitive_violations(edges) if line.startswith("recsys.service.app ")]
    assert chains == ["recsys.service.app reaches recsys.model: recsys.service.app -> recsys.index.search -> "
                      "recsys.artifacts.store -> recsys.model.train (at service/app.py:1, index/search.py:1, "
                      "artifacts/store.py:2)"]


def test_test_module_names_are_unique_outside_packages():
    # pytest's default import mode puts a test folder without __init__.py on sys.path and
    # imports its files by basename: two files of one name in such folders break collection.
    owners: dict[str, list[str]] = {}
    for path in (ROOT / "tests").rglob("test_*.py"):
        if not (path.parent / "__init__.py").exists():
            owners.setdefault(path.name, []).append(str(path.relative_to(ROOT)))
    clashes = {name: paths for name, paths in owners.items() if len(paths) > 1}
    assert not clashes, f"rename one of each: {clashes}"
