"""Every setting is an environment variable, a `recsys serve` flag and a row of the README table."""

from __future__ import annotations

import argparse
import re

import pytest

from recsys.cli import main, parser
from recsys.service.settings import ENV_ONLY, Settings, env_name, shown_default
from tests.conftest import ROOT



def serve_flags() -> dict[str, argparse.Action]:
    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    return {a.dest: a for a in sub.choices["serve"]._actions if a.option_strings and a.dest != "help"}


def readme_rows() -> dict[str, str]:
    """env name -> default cell of the README's settings table (a row may name two settings)."""
    text = (ROOT / "README.md").read_text()
    table = text.split("### Settings", 1)[1].split("\n#", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if not line.startswith("| `RECSYS_"):
            continue
        names = re.findall(r"`(RECSYS_[A-Z_]+)`", cells[0])
        defaults = [d.strip() for d in cells[1].replace("`", "").split(",")] if len(names) > 1 else [
            cells[1].replace("`", "")]
        assert len(defaults) == len(names), line
        rows.update(zip(names, defaults))
    return rows


def test_the_readme_table_lists_exactly_the_settings_with_their_defaults():
    rows = readme_rows()
    assert set(rows) == {env_name(n) for n in Settings.model_fields}  # no row missing, none stale
    for name in Settings.model_fields:
        cell, default = rows[env_name(name)], shown_default(name)
        assert cell == default or cell.startswith(f"{default} ("), (name, cell, default)


def test_every_setting_but_the_secret_is_a_flag_whose_help_states_its_default():
    flags = serve_flags()
    assert set(flags) == set(Settings.model_fields) - ENV_ONLY  # and nothing else
    for name, field in Settings.model_fields.items():
        if name in ENV_ONLY:
            continue
        action = flags[name]
        assert action.option_strings == [f"--{name.replace('_', '-')}"]
        assert action.default is None  # unset flags leave the environment's value alone
        assert action.help == f"{field.description} (env {env_name(name)}; default {shown_default(name)})"
        assert "default" not in field.description  # the one default is the computed one


def test_flags_parse_to_the_fields_types_and_choices():
    flags = serve_flags()
    assert flags["user_tower"].choices == ("numpy", "savedmodel")
    assert flags["log_level"].choices == ("critical", "error", "warning", "info", "debug")
    args = parser().parse_args(["serve", "--max-k", "7", "--batch-delay-ms", "0.5", "--version", "v1"])
    assert (args.max_k, args.batch_delay_ms, args.version) == (7, 0.5, "v1")


def test_build_index_kinds_are_the_formats():
    from recsys.index import formats

    sub = next(a for a in parser()._actions if isinstance(a, argparse._SubParsersAction))
    index = next(a for a in sub.choices["build-index"]._actions if a.dest == "index")
    assert tuple(index.choices) == formats.KINDS


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
