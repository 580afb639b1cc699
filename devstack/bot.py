"""The bot's own processes, as the Procfile runs them: gunicorn web and a Celery worker."""
from __future__ import annotations

import sys
from pathlib import Path

from bot.localstack import Service, free_port, start_process


def start_web(workdir: Path, env: dict[str, str], *, workers: int = 1, threads: int = 4, port: int = 0) -> Service:
    port = port or free_port()
    argv = [sys.executable, "-m", "gunicorn", "--bind", f"127.0.0.1:{port}", "--workers", str(workers),
            "--worker-class", "gthread", "--threads", str(threads),
            "bot.web:create_app()"]
    url = f"http://127.0.0.1:{port}"
    return start_process("web", argv, workdir=workdir, url=url, env=env,
                         ready=lambda: _ok(url + "/healthz"), timeout=60)


def start_worker(workdir: Path, env: dict[str, str], *, concurrency: int = 8, name: str = "worker") -> Service:
    argv = [sys.executable, "-m", "bot", "worker", "--concurrency", str(concurrency), "--hostname", f"{name}@%h"]
    log_path = workdir / f"{name}.log"

    def ready() -> bool:
        try:
            return "ready." in log_path.read_text(errors="replace")
        except OSError:
            return False

    return start_process(name, argv, workdir=workdir, url="", env=env, ready=ready, timeout=90)


def _ok(url: str) -> bool:
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=1) as r:
            return r.status == 200
    except OSError:
        return False
