"""A private Redis on a free port under a temp dir: tests and the demo never touch a shared one."""

from __future__ import annotations

import shutil
from pathlib import Path

import redis

from devstack.processes import Service, ServiceError, free_port, start_process


def start_redis(workdir: Path) -> Service:
    binary = shutil.which("redis-server")
    if not binary:
        raise ServiceError("redis-server is not installed: `apt-get install -y redis-server` (make does this)")
    port = free_port()
    url = f"redis://127.0.0.1:{port}/0"
    argv = [
        binary,
        "--port",
        str(port),
        "--bind",
        "127.0.0.1",
        "--save",
        "",
        "--appendonly",  # what the bot asks of production Redis: an append-only file, no eviction
        "yes",
        "--appendfsync",
        "everysec",
        "--maxmemory-policy",
        "noeviction",
        "--dir",
        str(workdir),
        "--daemonize",
        "no",
        "--protected-mode",
        "yes",
    ]

    return start_process("redis", argv, workdir=workdir, url=url, ready=lambda: _answers(url), timeout=20)


def start_again(old: Service, argv: list[str] | None = None) -> Service:
    """Redis again on `old`'s port and directory (with `argv`, e.g. other persistence flags): it reloads what it
    kept there (the append-only file)."""
    argv = argv or list(old.process.args)
    workdir = Path(argv[argv.index("--dir") + 1])
    return start_process("redis", argv, workdir=workdir, url=old.url, ready=lambda: _answers(old.url), timeout=30)


def _answers(url: str) -> bool:
    try:
        return bool(redis.Redis.from_url(url, socket_connect_timeout=0.2).ping())
    except redis.RedisError:
        return False
