"""Sandbox forge: a local GitHub-compatible server (REST API, webhooks, git over HTTP).

Run it with ``python -m sandbox.forge --port P --data DIR --seed FILE`` (or
``mlops-bot sandbox forge ...`` which calls :func:`main`). It prints
``sandbox forge listening on http://127.0.0.1:P`` when ready. ``--port 0`` picks a
free port (the printed line tells which). Talk to it with PyGithub::

    Github(base_url="http://127.0.0.1:P", auth=Auth.Token("ghp_alice"))

State lives in memory and is saved as JSON in ``DATA/state.json``; bare git repos
live in ``DATA/repos/<owner>/<repo>.git`` and are served at
``http://127.0.0.1:P/<owner>/<repo>.git`` (clone anonymous, push with basic auth
``http://<anything>:<token>@127.0.0.1:P/<owner>/<repo>.git`` and write permission).
A push straight to the bare repo path also fires webhooks (post-receive hook; the
pusher is ``$GIT_PUSHER`` or the repo owner).

Seed file (TOML)::

    [users.alice]
    token = "ghp_alice"
    name = "Alice A."                  # optional
    email = "alice@example.com"        # optional
    [users.bob]
    token = "ghp_bob"
    [users."mlops-bot"]
    token = "ghp_bot"
    type = "Bot"                       # User (default) or Bot

    [[repos]]
    full_name = "acme/churn-model"     # owner need not be a user (then it is an Organization)
    default_branch = "main"            # default "main"
    init_from = "examples/churn-model" # optional dir (relative to the seed file) -> first commit;
                                       # without it the first commit holds a README.md
    description = "..."                # optional
    permissions = { alice = "write", bob = "admin", carol = "read", "mlops-bot" = "write" }
                                       # admin|maintain|write|triage|read; the owner is always admin
    [repos.webhook]                    # optional
    url = "http://127.0.0.1:8000/webhooks/github"
    secret = "dev-secret"              # or secret_env = "GITHUB_WEBHOOK_SECRET"
    events = ["push", "delete", "pull_request", "issue_comment"]   # default: these four; "*" = all
                                       # also available: create, status, check_run, fork, issues

    [[apps]]                           # optional GitHub App (installed on all seeded repos)
    id = 123
    slug = "mlops-bot"
    installation_id = 456
    public_key_file = "app.pub.pem"    # PEM public key verifying the app's RS256 JWT
                                       # (or public_key = "-----BEGIN PUBLIC KEY-----...")

The seed is re-applied on every start (users, tokens, permissions, webhooks); repos
that already exist in DATA keep their git history, PRs, comments, etc.

See README.md in this directory for the endpoint list and webhook behaviour.
"""

from __future__ import annotations

import argparse
import logging
import signal
import sys

__all__ = ["create_app", "main"]


def create_app(data_dir, seed, base_url: str):
    """Create the forge Flask app (``seed``: TOML path, parsed dict or None)."""
    from .app import create_app as _create

    return _create(data_dir, seed, base_url)


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="sandbox forge", description="Local GitHub-compatible forge")
    parser.add_argument("--port", type=int, default=9000, help="port (0 = pick a free one)")
    parser.add_argument("--host", default="127.0.0.1", help="bind address (default 127.0.0.1)")
    parser.add_argument("--data", required=True, help="state directory (created if missing)")
    parser.add_argument("--seed", default=None, help="seed TOML file")
    parser.add_argument("--base-url", default=None, help="public base URL (default http://HOST:PORT)")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    args = parser.parse_args(argv)

    from werkzeug.serving import make_server

    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s %(message)s")
    logging.getLogger("werkzeug").setLevel(logging.INFO if args.verbose else logging.WARNING)

    holder: dict = {}

    def wsgi(environ, start_response):
        return holder["app"](environ, start_response)

    server = make_server(args.host, args.port, wsgi, threaded=True)
    port = server.server_port
    base_url = (args.base_url or f"http://{args.host}:{port}").rstrip("/")
    app = create_app(args.data, args.seed, base_url)
    holder["app"] = app

    def _stop(signum, frame):
        raise KeyboardInterrupt

    signal.signal(signal.SIGTERM, _stop)
    print(f"sandbox forge listening on {base_url}", flush=True)
    try:
        server.serve_forever()
    except KeyboardInterrupt:
        pass
    finally:
        server.server_close()
        app.extensions["forge"].flush()
        sys.stdout.flush()
