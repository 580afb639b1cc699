"""The whole loop on one machine: every process the demo and the end-to-end tests need.

Private Redis, a real MLflow server (with the bot's webhook installed), the sandbox forge hosting
`acme/churn-model` (from examples/churn-model), the sandbox Databricks workspace, the sandbox
Slack, and the bot's web process and worker — each in its own process group, on free ports,
under one temp dir, configured by examples/demo.config.toml.
"""
from __future__ import annotations

import os
import textwrap
from pathlib import Path
from string import Template

from bot.localstack import Service, free_port
from bot.localstack.bot import start_web, start_worker
from bot.localstack.mlflow import start_mlflow
from bot.localstack.redis import start_redis
from bot.localstack.sandboxes import SLACK_TOKEN, WORKSPACE_TOKEN, start_forge, start_slack, start_workspace

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = ROOT / "examples" / "churn-model"
REPO = "acme/churn-model"
USERS = {"alice": "ghp_alice", "bob": "ghp_bob", "carol": "ghp_carol", "mlops-bot": "ghp_mlops_bot"}
# Local, demo-only secrets: the stack's processes get them, nothing else does.
SECRETS = {
    "GITHUB_WEBHOOK_SECRET": "demo-github-secret",
    "MLFLOW_WEBHOOK_SECRET": "demo-mlflow-secret",
    "DATABRICKS_WEBHOOK_SECRET": "demo-databricks-secret",
    "SLACK_SIGNING_SECRET": "demo-slack-secret",
    "MLOPS_BOT_DASHBOARD_TOKEN": "demo-dashboard-token",
}


class Stack:
    def __init__(self, workdir: Path, *, worker_concurrency: int = 2):
        self.workdir = workdir
        self.worker_concurrency = worker_concurrency
        self.services: dict[str, Service] = {}
        self.env: dict[str, str] = {}
        self.config_path = workdir / "config.toml"

    def url(self, name: str) -> str:
        return self.services[name].url

    def start(self, say=lambda name, service: None, install_hook: bool = True) -> "Stack":
        """Start everything; `say(name, service)` is called as each one is up."""
        w = self.workdir
        web_port = free_port()
        web_url = f"http://127.0.0.1:{web_port}"

        def up(name: str, service: Service) -> Service:
            self.services[name] = service
            say(name, service)
            return service

        redis = up("redis", start_redis(w))
        mlflow = up("mlflow", start_mlflow(w))
        up("slack", start_slack(w, signing_secret=SECRETS["SLACK_SIGNING_SECRET"],
                                interactions_url=f"{web_url}/webhooks/slack/interactions",
                                commands_url=f"{web_url}/webhooks/slack/commands"))
        seed = w / "forge-seed.toml"
        seed.write_text(self._seed(web_url))
        forge = up("forge", start_forge(w, seed))
        up("workspace", start_workspace(w, mlflow_tracking_uri=mlflow.url))
        self.config_path.write_text(Template((ROOT / "examples" / "demo.config.toml").read_text()).substitute(
            WEB_URL=web_url, FORGE_URL=forge.url, MLFLOW_URL=mlflow.url, SLACK_URL=self.url("slack"),
            WORKSPACE_URL=self.url("workspace")))
        self.env = {**SECRETS, "REDIS_URL": redis.url, "MLOPS_BOT_CONFIG": str(self.config_path),
                    "GITHUB_TOKEN": USERS["mlops-bot"], "DATABRICKS_TOKEN": WORKSPACE_TOKEN,
                    "SLACK_BOT_TOKEN": SLACK_TOKEN, "MLFLOW_TRACKING_URI": mlflow.url}
        up("web", start_web(w, self.env, port=web_port, workers=1, threads=4))
        up("worker", start_worker(w, self.env, concurrency=self.worker_concurrency))
        if install_hook:
            self.install_registry_hook()
        return self

    def _seed(self, web_url: str) -> str:
        users = "".join(f'[users."{u}"]\ntoken = "{t}"\n' + ('type = "Bot"\n' if u == "mlops-bot" else "")
                        for u, t in USERS.items())
        return users + textwrap.dedent(f"""\
            [[repos]]
            full_name = "{REPO}"
            default_branch = "main"
            init_from = "{EXAMPLE}"
            permissions = {{ alice = "write", bob = "admin", carol = "read", "mlops-bot" = "write" }}
            [repos.webhook]
            url = "{web_url}/webhooks/github"
            secret = "{SECRETS['GITHUB_WEBHOOK_SECRET']}"
            """)

    def install_registry_hook(self) -> str:
        from bot.config import load_config
        from bot.registry_hooks import install_hook

        hook, what = install_hook(load_config(self.config_path), SECRETS["MLFLOW_WEBHOOK_SECRET"])
        return what

    def stop(self) -> None:
        for service in reversed(list(self.services.values())):
            service.stop()
