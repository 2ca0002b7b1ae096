"""Every setting is an environment variable, a `recsys serve` flag and a row of the README table."""

from __future__ import annotations

import argparse

import pytest

from recsys.cli import main, parser
from recsys.service.settings import Settings
from tests.conftest import ROOT

ENV_ONLY = {"admin_token"}  # a secret: never on a command line


def serve_flags() -> dict[str, argparse.Action]:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["serve"]._actions if a.option_strings}


def test_every_setting_has_a_flag_and_a_readme_row():
    flags, readme = serve_flags(), (ROOT / "README.md").read_text()
    for name in Settings.model_fields:
        assert f"`RECSYS_{name.upper()}`" in readme, name
        if name in ENV_ONLY:
            assert name not in flags
        else:
            assert f"--{name.replace('_', '-')}" in flags[name].option_strings, name


def test_settings_come_from_the_environment(monkeypatch):
    monkeypatch.setenv("RECSYS_MAX_IN_FLIGHT", "3")
    monkeypatch.setenv("RECSYS_UNKNOWN_USER_FALLBACK", "popular")
    monkeypatch.setenv("RECSYS_ADMIN_TOKEN", "")
    s = Settings()
    assert s.max_in_flight == 3 and s.unknown_user_fallback == "popular" and s.admin_token is None


@pytest.mark.parametrize("env, args, message", [
    ({"RECSYS_ADMIN_TOKEN": "short"}, [], "setting admin_token: must be at least 16 printable ASCII characters"),
    ({"RECSYS_ADMIN_TOKEN": "a secret with spaces"}, [], "setting admin_token: must be at least 16"),
    ({}, ["--queue-timeout", "0"], "setting queue_timeout: Input should be greater than 0"),
    ({}, ["--max-queue", "-1"], "setting max_queue: Input should be greater than or equal to 0"),
])
def test_bad_settings_are_one_line_and_exit_2(monkeypatch, capsys, env, args, message):
    for k, v in env.items():
        monkeypatch.setenv(k, v)
    assert main(["serve", "--artifacts", "/nonexistent", *args]) == 2
    err = capsys.readouterr().err
    assert err.startswith(f"recsys: error: {message}") and err.count("\n") == 1
    assert "secret" not in err  # a rejected token is not echoed
