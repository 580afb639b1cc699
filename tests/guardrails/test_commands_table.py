"""A command is one entry of `core.commands.COMMANDS` plus its service: the guard rail fails when one lacks a piece.

Each piece is checked by the same functions the workers call at import (`require_handlers`), so a gap this
test would catch also stops a worker at start instead of ending a command as "gave up" at run time.
"""

from __future__ import annotations

import dataclasses
import sys
import types
from pathlib import Path

import pytest

from core.commands import (
    COMMANDS,
    DEFAULT_PERMISSIONS,
    SLACK_COMMANDS,
    IncompleteCommands,
    handler_problems,
    require_handlers,
    table_problems,
)
from core.config import parse_config
from workers.pr import chatops
from workers.release import slack_commands

ROOT = Path(__file__).resolve().parents[2]


def test_every_command_has_every_piece() -> None:
    assert table_problems(COMMANDS) == []
    assert handler_problems(COMMANDS, chatops.SERVICES, "chatops") == []
    assert handler_problems(SLACK_COMMANDS, slack_commands.SERVICES, "slack_commands") == []


def test_every_default_permission_is_a_key_config_toml_accepts() -> None:
    written = {name.replace("-", "_"): "admin" for name in DEFAULT_PERMISSIONS}
    permissions = parse_config({"permissions": written}).permissions
    assert {name: permissions.needed(name) for name in DEFAULT_PERMISSIONS} == dict.fromkeys(
        DEFAULT_PERMISSIONS, "admin"
    )
    defaults = parse_config({}).permissions
    assert {name: defaults.needed(name) for name in DEFAULT_PERMISSIONS} == DEFAULT_PERMISSIONS


@pytest.mark.parametrize(
    "change, problem",
    [
        ({"usage": ""}, "/deploy: no usage"),
        ({"usage": "/deplyo <stage>"}, "/deploy: no usage starting with `/deploy`"),
        ({"help": " "}, "/deploy: no help line"),
        ({"parse": None}, "/deploy: no parser"),
        ({"permission": "owner"}, "/deploy: 'deploy' has no default permission"),
        ({"gated": (("deploy-prod", ""),)}, "/deploy: 'deploy-prod' has no default permission"),
        ({"name": "Deploy"}, "`deploy`: filed under another name"),
    ],
)
def test_the_check_reports_a_missing_piece_of_the_table(change: dict, problem: str) -> None:
    """The guard rail itself can fail: a table whose `/deploy` lacks a piece is reported, naming it."""
    broken = {**COMMANDS, "deploy": dataclasses.replace(COMMANDS["deploy"], **change)}
    problems = table_problems(broken)
    assert len(problems) == 1 and problems[0].startswith(problem), problems


def test_the_check_reports_a_missing_or_stray_service() -> None:
    services = {name: service for name, service in chatops.SERVICES.items() if name != "deploy"}
    assert handler_problems(COMMANDS, {**services, "deplyo": print}, "chatops.SERVICES") == [
        "/deploy: no service in chatops.SERVICES",
        "chatops.SERVICES maps `deplyo`, which is no command in core/commands.py",
    ]
    with pytest.raises(IncompleteCommands, match="/deploy: no service"):
        require_handlers(services, COMMANDS, "chatops.SERVICES")


def test_a_worker_whose_mapping_misses_a_command_does_not_start(monkeypatch: pytest.MonkeyPatch) -> None:
    """workers/pr/chatops.py without `/deploy`'s line fails as it is imported (the worker's start), naming it."""
    source = (ROOT / "workers" / "pr" / "chatops.py").read_text()
    line = '    "deploy": _deploy,\n'
    assert line in source
    module = types.ModuleType("chatops_without_deploy")
    monkeypatch.setitem(sys.modules, module.__name__, module)  # dataclasses look their module up there
    with pytest.raises(IncompleteCommands, match="/deploy: no service in workers/chatops.SERVICES"):
        exec(compile(source.replace(line, ""), "workers/pr/chatops.py", "exec"), module.__dict__)


def test_the_readme_lists_every_command_as_the_table_writes_it() -> None:
    """README's command table and the command table agree: each command's usage, as `/help` shows it, starts a row."""
    readme = (ROOT / "README.md").read_text()
    rows = [spec.usage for spec in COMMANDS.values() if f"| `{spec.usage.replace('|', chr(92) + '|')}` |" not in readme]
    assert not rows, f"README.md's command table lacks (or words differently): {rows}"
