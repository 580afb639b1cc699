"""The sandbox servers as local processes (`python -m sandbox.<name>`): a Databricks-compatible workspace,
a GitHub-compatible forge and a Slack stand-in. They run from the repository root: `sandbox` is not installed."""

from __future__ import annotations

import sys
from pathlib import Path

from devstack import ROOT
from devstack.processes import Service, free_port, is_ready, start_process

WORKSPACE_TOKEN = "dapi-sandbox"


def start_workspace(
    workdir: Path,
    *,
    mlflow_tracking_uri: str = "",
    mlflow_registry_uri: str | None = None,
    faults: list[str] = (),
    token: str = WORKSPACE_TOKEN,
    name: str = "workspace",
    service_principals: dict[str, str] | None = None,
    oauth_secrets: dict[str, str] | None = None,
    save_every: float = 0.0,
) -> Service:
    """The workspace; `token` is its admin's, `service_principals` (application id -> token) the others', and
    `oauth_secrets` (application id -> secret) their OAuth secrets; `save_every` > 0 writes its jobs to disk that
    often instead of on every API write (bench/org.py: tens of thousands of jobs)."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "sandbox.workspace",
        "--port",
        str(port),
        "--data",
        str(workdir / name),
        "--token",
        token,
    ]
    if mlflow_tracking_uri:
        argv += ["--mlflow-tracking-uri", mlflow_tracking_uri]
    if mlflow_registry_uri:
        argv += ["--mlflow-registry-uri", mlflow_registry_uri]
    for fault in faults:
        argv += ["--fault", fault]
    if save_every:
        argv += ["--save-every", str(save_every)]
    for app_id, sp_token in (service_principals or {}).items():
        argv += ["--service-principal", f"{app_id}={sp_token}"]
    for app_id, secret in (oauth_secrets or {}).items():
        argv += ["--oauth-secret", f"{app_id}={secret}"]
    url = f"http://127.0.0.1:{port}"
    return start_process(
        name, argv, workdir=workdir, url=url, cwd=ROOT, ready=lambda: is_ready(url + "/sandbox/health"), timeout=30
    )


def start_forge(workdir: Path, seed: Path, *, name: str = "forge", ready_timeout: float = 30) -> Service:
    """The forge; `ready_timeout` is how long it may take to import the seed's repositories before it answers."""
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "sandbox.forge",
        "--port",
        str(port),
        "--data",
        str(workdir / name),
        "--seed",
        str(seed),
    ]
    url = f"http://127.0.0.1:{port}"
    return start_process(
        name,
        argv,
        workdir=workdir,
        url=url,
        cwd=ROOT,
        ready=lambda: is_ready(url + "/sandbox/deliveries"),
        timeout=ready_timeout,
    )


SLACK_TOKEN = "xoxb-sandbox"


def start_slack(
    workdir: Path, *, signing_secret: str, interactions_url: str, commands_url: str = "", name: str = "slack"
) -> Service:
    port = free_port()
    argv = [
        sys.executable,
        "-m",
        "sandbox.slack",
        "--port",
        str(port),
        "--data",
        str(workdir / name),
        "--token",
        SLACK_TOKEN,
        "--signing-secret",
        signing_secret,
        "--interactions-url",
        interactions_url,
    ]
    if commands_url:
        argv += ["--commands-url", commands_url]
    url = f"http://127.0.0.1:{port}"
    return start_process(
        name, argv, workdir=workdir, url=url, cwd=ROOT, ready=lambda: is_ready(url + "/sandbox/health"), timeout=30
    )
