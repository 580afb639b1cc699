"""The Procfile is the one source of the process command lines: devstack reads it, the bot's CLI parses it."""

from __future__ import annotations

import sys

import pytest

from bot.cli import build_parser, gunicorn_argv
from devstack import procfile


def test_web_entry_takes_its_sizing_from_the_environment():
    env = {"WEB_HOST": "127.0.0.1", "PORT": "1234", "WEB_CONCURRENCY": "1", "WEB_THREADS": "3"}
    argv = procfile.command("web", env)
    assert argv[:3] == [sys.executable, "-m", "bot"]
    args = build_parser().parse_args(argv[3:])
    assert (args.host, args.port, args.workers, args.threads) == ("127.0.0.1", 1234, 1, 3)
    assert gunicorn_argv(args.host, args.port, args.workers, args.threads)[-1] == "bot.web:create_app()"


def test_defaults_apply_when_the_environment_is_silent():
    args = build_parser().parse_args(procfile.command("web", {})[3:])
    assert (args.host, args.port, args.workers, args.threads) == ("0.0.0.0", 8000, 2, 4)
    assert build_parser().parse_args(procfile.command("worker", {})[3:]).concurrency == 8


@pytest.mark.parametrize("process", ["web", "worker", "beat"])
def test_every_entry_is_a_command_of_the_bot(process):
    args = build_parser().parse_args(procfile.command(process, {})[3:])
    assert args.command == process
