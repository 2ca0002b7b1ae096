"""What can be checked of the container files without a Docker engine."""

import re
import shlex

import pytest
import yaml

from recsys.cli import parser
from tests.conftest import ROOT

COMPOSE = yaml.safe_load((ROOT / "docker" / "compose.yaml").read_text())
DOCKERFILE = (ROOT / "docker" / "Dockerfile").read_text()


def recsys_commands(service: dict) -> list[list[str]]:
    """Every `recsys ...` argv a service runs, whether through sh -c or the image entrypoint."""
    command = service["command"]
    if service.get("entrypoint") == ["sh", "-c"]:
        return [shlex.split(part)[1:] for part in " ".join(command).split("&&") if part.strip()]
    return [command]


@pytest.mark.parametrize("name", ["build", "api"])
def test_service_commands_are_real_cli_commands(name):
    argvs = recsys_commands(COMPOSE["services"][name])
    assert argvs
    for argv in argvs:
        args = parser().parse_args(argv)  # exits (SystemExit) on an unknown command or flag
        assert callable(args.func)


def test_build_job_runs_the_whole_offline_chain():
    argvs = recsys_commands(COMPOSE["services"]["build"])
    assert [a[0] for a in argvs] == ["simulate", "train", "build-index"]


def test_api_waits_for_the_job_and_checks_readiness():
    api = COMPOSE["services"]["api"]
    assert api["depends_on"]["build"]["condition"] == "service_completed_successfully"
    assert "8000:8000" in api["ports"] and "artifacts:/artifacts:ro" in api["volumes"]
    path = re.search(r"http://127\.0\.0\.1:8000(/\w+)", " ".join(api["healthcheck"]["test"])).group(1)
    from recsys.service.app import create_app

    assert path == "/readyz" and path in {r.path for r in create_app().routes}


def test_dockerfile_copies_existing_sources_and_drops_root():
    for src in re.findall(r"^COPY (\S+)", DOCKERFILE, flags=re.M):
        assert (ROOT / src).exists(), src
    assert re.search(r"^USER (?!root)\w+", DOCKERFILE, flags=re.M)
    assert 'ENTRYPOINT ["recsys"]' in DOCKERFILE
