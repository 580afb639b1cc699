"""The bot's own processes, started from their Procfile entries: the web process, a Celery worker and beat."""

from __future__ import annotations

from pathlib import Path

from devstack import procfile
from devstack.processes import Service, free_port, is_ready, start_process


def start_web(workdir: Path, env: dict[str, str], *, workers: int = 1, threads: int = 4, port: int = 0) -> Service:
    port = port or free_port()
    sizing = {"WEB_HOST": "127.0.0.1", "PORT": str(port), "WEB_CONCURRENCY": str(workers), "WEB_THREADS": str(threads)}
    argv = procfile.command("web", {**env, **sizing})
    url = f"http://127.0.0.1:{port}"
    return start_process(
        "web", argv, workdir=workdir, url=url, env=env, ready=lambda: is_ready(url + "/healthz"), timeout=60
    )


def start_worker(workdir: Path, env: dict[str, str], *, concurrency: int = 8, name: str = "worker") -> Service:
    # A name of its own, so that two workers of one test (one killed, one taking over) are told apart
    argv = procfile.command("worker", {**env, "WORKER_CONCURRENCY": str(concurrency)}) + ["--hostname", f"{name}@%h"]
    log_path = workdir / f"{name}.log"

    def ready() -> bool:
        try:
            return "ready." in log_path.read_text(errors="replace")
        except OSError:
            return False

    return start_process(name, argv, workdir=workdir, url="", env=env, ready=ready, timeout=90)


def start_beat(workdir: Path, env: dict[str, str]) -> Service:
    """The Procfile's beat: it moves due follow-ups and retries onto the queue (every 2 s), polls registries
    without webhooks and runs the janitor. Its schedule file lives in the workdir."""
    argv = procfile.command("beat", env) + ["--schedule", str(workdir / "beat-schedule")]
    log_path = workdir / "beat.log"

    def ready() -> bool:
        try:
            return "Starting" in log_path.read_text(errors="replace")
        except OSError:
            return False

    return start_process("beat", argv, workdir=workdir, url="", env=env, ready=ready, timeout=60)
