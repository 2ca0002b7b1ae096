"""What can be checked of the container files without a Docker engine (docker/e2e.sh runs them)."""

import re
import shlex
import tomllib

import pytest
import yaml

from recsys.cli import parser
from tests.conftest import ROOT


class ComposeLoader(yaml.SafeLoader):
    """YAML as Compose reads it: `!reset` clears a value inherited from an earlier file."""


ComposeLoader.add_constructor("!reset", lambda loader, node: None)

COMPOSE = yaml.load((ROOT / "docker" / "compose.yaml").read_text(), ComposeLoader)
REPLICAS = yaml.load((ROOT / "docker" / "compose.replicas.yaml").read_text(), ComposeLoader)
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()
# Continuation lines joined, comments dropped: one instruction per line.
INSTRUCTIONS = [line.strip() for line in re.sub(r"\\\n", " ", DOCKERFILE).splitlines()
                if line.strip() and not line.lstrip().startswith("#")]
STAGES = re.findall(r"^FROM \S+ AS (\w+)$", DOCKERFILE, flags=re.M)


def interpolate(text: str) -> str:
    """Compose's `${VAR:-default}` with nothing set: the default."""
    return re.sub(r"\$\{\w+:-([^}]*)\}", r"\1", text)


def recsys_commands(service: dict) -> list[list[str]]:
    """Every `recsys ...` argv a service runs, whether through sh -c or the image entrypoint."""
    command = service["command"]
    if service.get("entrypoint") == ["sh", "-c"]:
        return [shlex.split(interpolate(part))[1:] for part in " ".join(command).split("&&") if part.strip()]
    return [command]


def copy_sources(instruction: str) -> list[str]:
    """The sources of a COPY from the build context (every one of a multi-source line)."""
    args = shlex.split(instruction)[1:]
    if any(a.startswith("--from=") for a in args):
        return []
    paths = [a for a in args if not a.startswith("--")]
    return paths[:-1]


def requirement_names(text: str) -> set[str]:
    return {re.split(r"[\[<>=;! ]", line, maxsplit=1)[0].lower().replace("_", "-")
            for line in text.splitlines() if line and not line.startswith((" ", "#", "-"))}


PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
DEPENDENCIES = requirement_names("\n".join(PYPROJECT["project"]["dependencies"]))
TRAINING_ONLY = {"tensorflow", "tensorflow-cpu", "keras", "scipy"}  # scipy: offline evaluation only


@pytest.mark.parametrize("name", ["build", "api"])
def test_service_commands_are_real_cli_commands(name):
    argvs = recsys_commands(COMPOSE["services"][name])
    assert argvs
    for argv in argvs:
        args = parser().parse_args(argv)  # exits (SystemExit) on an unknown command or flag
        assert callable(args.func)


def test_build_job_runs_the_whole_offline_chain_and_prunes():
    argvs = recsys_commands(COMPOSE["services"]["build"])
    assert [a[0] for a in argvs] == ["simulate", "train", "build-index", "prune"]
    assert parser().parse_args(argvs[-1]).keep >= 1


def test_api_waits_for_the_job_and_checks_readiness():
    api = COMPOSE["services"]["api"]
    assert api["depends_on"]["build"]["condition"] == "service_completed_successfully"
    assert api["ports"] == ["${RECSYS_PORT:-8000}:8000"] and "artifacts:/artifacts:ro" in api["volumes"]
    assert api["restart"] in {"always", "unless-stopped", "on-failure"}
    assert api["healthcheck"]["start_period"]
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", " ".join(api["healthcheck"]["test"])).group(1)
    from recsys.service.app import create_app

    assert path == "/readyz" and path in {r.path for r in create_app().routes}


def test_own_images_are_built_here_never_pulled():
    for compose in (COMPOSE, REPLICAS):
        for name, service in compose["services"].items():
            if "build" in service:
                assert service["pull_policy"] in {"build", "never"}, name
                assert service["build"]["target"] in STAGES, name
                assert (ROOT / "docker" / service["build"]["context"] / service["build"]["dockerfile"]).is_file()


def test_replicas_publish_no_port_and_sit_behind_the_load_balancer():
    assert REPLICAS["services"]["api"]["ports"] is None  # !reset: the replicas share no host port
    lb = REPLICAS["services"]["lb"]
    assert lb["ports"] == ["${RECSYS_PORT:-8000}:8000"]
    assert lb["depends_on"]["api"]["condition"] == "service_healthy"
    haproxy = (ROOT / "docker" / "haproxy.cfg").read_text()
    assert re.search(r"^\s*server-template api \d+ api:8000$", haproxy, flags=re.M)
    assert "option httpchk GET /readyz" in haproxy


def test_dockerfile_copies_existing_sources_and_drops_root():
    copies = [i for i in INSTRUCTIONS if i.startswith("COPY ")]
    assert any(len(copy_sources(c)) > 1 for c in copies)  # pyproject.toml README.md ./
    for instruction in copies:
        for src in copy_sources(instruction):
            assert (ROOT / src).exists(), f"{src} in {instruction!r}"
    for src in re.findall(r"--mount=type=bind,source=([^,\s]+)", DOCKERFILE):
        assert (ROOT / src).exists(), src
    # Every final image runs as a user other than root.
    for stage in ("train", "serve", "lb"):
        body = DOCKERFILE.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert re.search(r"^USER (?!root)\w+", body, flags=re.M), stage
    assert 'ENTRYPOINT ["recsys"]' in DOCKERFILE


def test_copy_source_parsing_takes_every_source():
    assert copy_sources("COPY a b ./") == ["a", "b"]
    assert copy_sources("COPY --chown=1:1 a b c /x/") == ["a", "b", "c"]
    assert copy_sources("COPY --from=wheel /wheels /wheels") == []


def test_images_install_pinned_locks_and_the_serving_one_has_no_tensorflow():
    train = (ROOT / "docker" / "requirements-train.txt").read_text()
    serve = (ROOT / "docker" / "requirements-serve.txt").read_text()
    assert DEPENDENCIES <= requirement_names(train)
    assert DEPENDENCIES - TRAINING_ONLY <= requirement_names(serve)
    assert not TRAINING_ONLY & requirement_names(serve)
    for lock in (train, serve):
        pins = [line for line in lock.splitlines() if line and not line.startswith((" ", "#"))]
        assert pins and all(re.match(r"^[\w.-]+(\[[\w,]+\])?==[\w.]+", p) for p in pins), pins
        assert "--hash=sha256:" in lock
    assert "--require-hashes -r /tmp/requirements.txt" in DOCKERFILE and "pip install --no-deps /wheels/" in DOCKERFILE


def test_no_build_leftovers_and_a_dockerignore():
    ignored = (ROOT / ".dockerignore").read_text().split()
    assert {".git", ".venv", "var"} <= set(ignored)
    # The package is built in its own stage; the images take only the wheel, by a bind mount.
    for stage in ("train", "serve"):
        body = DOCKERFILE.split(f" AS {stage}\n", 1)[1].split("\nFROM ", 1)[0]
        assert "COPY" not in body and "--mount=type=bind,from=wheel" in body, stage
