"""Sandbox forge: a local GitHub-compatible server (REST API, webhooks, git over HTTP).

Run it with ``python -m sandbox.forge --port P --data DIR --seed FILE [--fault SPEC ...]`` (which calls
:func:`main`). It prints
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
                                       # a git repository's top level (or a bare one): its branches
                                       # and tags, with history (default_branch must be among them);
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
    [apps.webhook]                     # optional: the App's webhook, fed the events of every seeded repo
    url = "http://127.0.0.1:8000/webhooks/github"   # (Target-Type `integration`); its deliveries are listed
    secret = "dev-secret"              # and redelivered by GET/POST /app/hook/deliveries… with the App's JWT

The seed is re-applied on every start (users, tokens, permissions, webhooks); repos
that already exist in DATA keep their git history, PRs, comments, etc.

See README.md in this directory for the endpoint list and webhook behaviour.
"""

from __future__ import annotations

from ..common import Server, serve
from .app import create_app

__all__ = ["create_app", "main"]


def add_arguments(parser) -> None:
    parser.add_argument("--seed", default=None, help="seed TOML file")
    parser.add_argument("--verbose", action="store_true", help="log every request")
    parser.add_argument(
        "--fault", action="append", default=[], help="inject a fault: METHOD:PATH=KIND[,OPTION...][:COUNT] (faults.py)"
    )


SERVER = Server(
    name="forge",
    prog="sandbox forge",
    description="Local GitHub-compatible forge",
    default_port=9000,
    build=lambda args, base_url: create_app(args.data, args.seed, base_url, args.fault),
    add_arguments=add_arguments,
    access_log=lambda args: args.verbose,
)


def main(argv: list[str] | None = None) -> None:
    serve(SERVER, argv)
