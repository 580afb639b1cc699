"""`mlops-bot` — the command line: the Procfile's processes, config check, audit trail, registry hooks."""

from __future__ import annotations

import argparse
import os
import sys


def _check_config(args: argparse.Namespace) -> int:
    from core.config import ConfigError, load_config
    from core.saved_jobs import saved_jobs_warnings
    from core.stages import pipeline_warnings, principal_problems

    path = args.path or os.environ.get("MLOPS_BOT_CONFIG", "config.toml")
    try:
        settings = load_config(args.path)
    except ConfigError as exc:
        print(exc, file=sys.stderr)
        return 1
    if args.pipeline:
        return _check_pipeline(settings, args.pipeline, args.repo)
    problems = principal_problems(settings)
    if problems:
        print("\n".join([f"{path}: {len(problems)} problem(s)", *(f"  {p}" for p in problems)]), file=sys.stderr)
        return 1
    print(
        f"{path}: ok — "
        f"{len(settings.repos)} repo(s), {len(settings.workflows)} workflow(s), "
        f"{len(settings.environments)} environment(s), {len(settings.models)} model(s)"
    )
    # what will not run, and a workspace's saved jobs near Databricks' limit: said now rather than when it fails
    for warning in pipeline_warnings(settings) + saved_jobs_warnings(settings):
        print(f"  warning: {warning}")
    return 0


def _check_pipeline(settings, path: str, repo_name: str | None) -> int:
    """A repository's own pipeline file, checked as the bot reads it at a commit: schema, the central config's
    references, every guard rail; then what its commands and stages would not run."""
    from core.pipeline import PipelineError, load_pipeline
    from core.stages import pipeline_warnings

    own = [r for r in settings.repos if r.pipeline_file and (repo_name is None or r.name.lower() == repo_name.lower())]
    if len(own) != 1:
        named = ", ".join(r.name for r in settings.repos if r.pipeline_file) or "none"
        print(f"--pipeline {path}: name its repository with --repo (repositories with a pipeline_file: {named})")
        return 2
    try:
        text = open(path, encoding="utf-8").read()  # noqa: SIM115 (read whole, closed at once)
        effective = load_pipeline(settings, own[0], text, path)
    except OSError as exc:
        print(f"--pipeline {path}: {exc.strerror}", file=sys.stderr)
        return 1
    except PipelineError as exc:
        print(
            "\n".join([f"{path}: {len(exc.lines)} problem(s)", *(f"  {line}" for line in exc.lines)]), file=sys.stderr
        )
        return 1
    print(f"{path}: ok for {own[0].name} — {len(effective.workflows)} workflow(s), {len(effective.models)} model(s)")
    for warning in pipeline_warnings(effective):
        print(f"  warning: {warning}")
    return 0


WEB_APP = "bot.web:create_app()"
# A gthread worker gives each connection a thread until its body is in: a few slow or idle
# clients froze every delivery (issue #12). This one reads requests on an event loop and runs
# the app in `threads` threads only once the whole body has arrived.
WEB_WORKER = "bot.cli.BufferingWorker"


def gunicorn_argv(host: str, port: int, workers: int, threads: int, app: str = WEB_APP) -> list[str]:
    """The one gunicorn command line of the web process (the Procfile's `web` runs it through `_web`)."""
    return [
        sys.executable,
        "-m",
        "gunicorn",
        "--bind",
        f"{host}:{port}",
        "--workers",
        str(workers),
        "--worker-class",
        WEB_WORKER,
        "--threads",
        str(threads),
        app,
    ]


def _buffering_worker() -> type:
    """A gunicorn worker: uvicorn's asyncio HTTP server (h11) in front of the WSGI app, which it calls
    with the body already buffered, from a pool of `--threads` threads."""
    import warnings

    with warnings.catch_warnings():
        # uvicorn keeps these two for gunicorn and plain WSGI while pointing at other packages
        warnings.simplefilter("ignore", DeprecationWarning)
        from uvicorn.middleware.wsgi import _WSGIMiddleware
        from uvicorn.workers import UvicornWorker

    class BufferingWorker(UvicornWorker):
        CONFIG_KWARGS = {"loop": "asyncio", "http": "h11", "lifespan": "off", "access_log": False}

        def load_wsgi(self) -> None:
            super().load_wsgi()
            app = self.wsgi  # type: ignore[has-type]  # gunicorn is untyped
            # the app reads at most this (its body limit + 1) and answers 413 past it: buffer no more
            cap = getattr(app, "config", {}).get("MAX_CONTENT_LENGTH") or float("inf")

            def buffered(environ, start_response):
                environ["wsgi.input_terminated"] = True  # the whole body is in wsgi.input (chunked ones too)
                return app(environ, start_response)

            with warnings.catch_warnings():
                warnings.simplefilter("ignore", DeprecationWarning)
                middleware = _WSGIMiddleware(buffered, workers=self.cfg.threads)

            async def capped(scope, receive, send):
                seen = 0

                async def receive_at_most_cap():
                    nonlocal seen
                    if seen >= cap:
                        return {"type": "http.request", "body": b"", "more_body": False}
                    message = await receive()
                    body = message.get("body", b"")
                    if seen + len(body) >= cap:
                        message = {**message, "body": body[: int(cap - seen)], "more_body": False}
                    seen += len(message.get("body", b""))
                    return message

                await middleware(scope, receive_at_most_cap, send)

            self.wsgi = capped

    return BufferingWorker


def __getattr__(name: str) -> type:
    # gunicorn loads WEB_WORKER by name; importing uvicorn only then keeps the other commands light
    if name == "BufferingWorker":
        return _buffering_worker()
    raise AttributeError(name)


def _web(args: argparse.Namespace) -> int:
    os.execv(sys.executable, gunicorn_argv(args.host, args.port, args.workers, args.threads))
    return 0


def _warn_if_redis_forgets() -> None:
    """Say at start, in the worker's log, if Redis evicts keys or keeps no append-only file (bot/durability.py)."""
    import redis

    from bot import durability
    from core.celery_app import redis_url
    from core.logs import get_logger

    try:
        found = durability.check(redis.Redis.from_url(redis_url(), socket_connect_timeout=2))
    except redis.RedisError:
        return  # Redis is not up yet: the worker waits for it and says so itself
    for problem in found.problems:
        get_logger("bot.cli").error("redis.durability", problem=problem)


def _worker(args: argparse.Namespace) -> int:
    from core.logs import setup_logging
    from workers.app import app

    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    _warn_if_redis_forgets()
    argv = [
        "worker",
        "--loglevel",
        "INFO",
        "--concurrency",
        str(args.concurrency),
        "--pool",
        args.pool,
        "--queues",
        app.conf.task_default_queue,
        "--without-gossip",
        "--without-mingle",
    ]
    if args.hostname:
        argv += ["--hostname", args.hostname]
    app.worker_main(argv)
    return 0


def _beat(args: argparse.Namespace) -> int:
    from core.logs import setup_logging
    from workers.app import app

    setup_logging(os.environ.get("LOG_LEVEL", "INFO"))
    app.start(["beat", "--loglevel", "INFO", "--schedule", args.schedule])
    return 0


def _audit(args: argparse.Namespace) -> int:
    import redis

    from core import audit
    from core.celery_app import redis_url

    client = redis.Redis.from_url(redis_url())
    found = audit.entries(client, _audit_names(args.model) if args.model else None, args.limit)
    if args.json:
        import json

        for e in found:
            print(json.dumps(e))
    else:
        for e in found:
            print(audit.format_entry(e))
        if not found:
            print("no decisions recorded" + (f" for {args.model}" if args.model else ""))
    return 0


def _audit_names(model: str) -> set[str]:
    """The names `audit --model` matches: the one given — a registry's, or a model's own, which the workers write
    into each entry — and, when config.toml names that model, its stages' registries (entries from before the
    workers wrote the model's own name)."""
    from core.config import ConfigError, load_config

    try:
        settings = load_config(None)
    except (ConfigError, OSError):  # no config here: the names the entries carry still match
        return {model}
    stages = settings.stages(model) if model in settings.models else []
    return {model, *(s.registry_name for s in stages)}


def _registry_hooks(args: argparse.Namespace) -> int:
    from bot.mlflow_webhook import install_hook, list_hooks
    from core.config import load_config

    settings = load_config(args.config)
    if args.action == "install":
        hook, what = install_hook(settings)
        print(f"{what} webhook {hook.name} ({hook.webhook_id}) → {hook.url} for {', '.join(map(str, hook.events))}")
    else:
        for hook in list_hooks(settings):
            print(f"{hook.webhook_id}  {hook.name:<12} {hook.status}  {hook.url}  {', '.join(map(str, hook.events))}")
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mlops-bot", description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)

    p = sub.add_parser("check-config", help="validate config.toml and say what is wrong, by key")
    p.add_argument("path", nargs="?", help="default: $MLOPS_BOT_CONFIG or ./config.toml")
    p.add_argument(
        "--pipeline", metavar="FILE", help="a repository's own pipeline file, checked within its guard rails"
    )
    p.add_argument("--repo", metavar="OWNER/NAME", help="whose pipeline file it is (when several have one)")
    p.set_defaults(func=_check_config)

    p = sub.add_parser("web", help="the webhook receiver under gunicorn (what the Procfile runs)")
    p.add_argument("--host", default="0.0.0.0")
    p.add_argument("--port", type=int, default=int(os.environ.get("PORT", "8000")))
    p.add_argument("--workers", type=int, default=2)
    p.add_argument("--threads", type=int, default=4)
    p.set_defaults(func=_web)

    p = sub.add_parser("worker", help="a Celery worker for the bot's tasks")
    # Tasks wait on GitHub/Databricks/MLflow, not on the CPU: threads carry more of them per process.
    p.add_argument("--concurrency", type=int, default=8)
    p.add_argument("--pool", default="threads", choices=["threads", "prefork", "solo"])
    p.add_argument("--hostname", default="")
    p.set_defaults(func=_worker)

    p = sub.add_parser("beat", help="Celery beat: the periodic janitor")
    p.add_argument("--schedule", default="celerybeat-schedule")
    p.set_defaults(func=_beat)

    p = sub.add_parser("audit", help="list the approval decisions (REDIS_URL)")
    p.add_argument("--model", default=None, help="a model's name (ato_risk) or a registry's (prod.fraud.ato_risk)")
    p.add_argument("--limit", type=int, default=200)
    p.add_argument("--json", action="store_true", help="one JSON object per line")
    p.set_defaults(func=_audit)

    p = sub.add_parser("registry", help="`registry hooks install|list`: the bot's webhook on the MLflow server")
    p.add_argument("what", choices=["hooks"])
    p.add_argument("action", choices=["install", "list"])
    p.add_argument("--config", default=None, help="default: $MLOPS_BOT_CONFIG or ./config.toml")
    p.set_defaults(func=_registry_hooks)

    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    return args.func(args) or 0


if __name__ == "__main__":
    sys.exit(main())
