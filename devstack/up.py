"""`python -m devstack up --repo PATH [--config FILE] [--name owner/repo]`: the whole loop around your own repository.

It starts what the demo starts — Redis, MLflow, the sandbox forge, workspace and Slack, the bot's web process,
worker and beat — with the forge hosting your repository (every branch, with its history), prints the URLs and
what to type to try the bot on it (push a branch, open a pull request, comment a command), and keeps everything
running until Ctrl-C, which stops every process it started.
"""

from __future__ import annotations

import json
import shlex
import shutil
import signal
import subprocess
import tempfile
import tomllib
from collections.abc import Callable
from pathlib import Path

from core.config import ConfigError, parse_config
from devstack.processes import Service, ServiceError
from devstack.project import PLACEHOLDERS, Project, ProjectError, branches, own_project
from devstack.sandboxes import WORKSPACE_TOKEN
from devstack.setups import PERMISSIONS, SECRETS, USERS, Setup, whole_loop

STOP = {signal.SIGINT, signal.SIGTERM}
TRY_USER = "alice"  # may push and comment (write); bob (admin) merges and approves: four eyes


def run_up(
    repo: Path,
    *,
    config: Path | None = None,
    name: str | None = None,
    workdir: Path | None = None,
    out: Callable[[str], None] | None = None,
) -> int:
    """Start the stack around the repository at `repo`, and stop it on SIGINT or SIGTERM: 0; a process that would
    not start or that exited: 1 (its logs are kept); a repository or config that cannot be hosted: 2."""
    out = out or _say
    try:
        project = own_project(repo, config=config, name=name)
        _check_config(project)
    except ProjectError as exc:
        out(f"cannot start: {exc}")
        return 2
    temporary = workdir is None
    workdir = workdir or Path(tempfile.mkdtemp(prefix="mlops-bot-up-"))
    out(f"mlops-bot up — {project.repo} from {project.source}; everything runs under {workdir}\n")
    stack: Setup | None = None
    stopped_cleanly = False
    try:
        stack = whole_loop(workdir, project=project, say=lambda name, service: _show(out, name, service))
        signal.pthread_sigmask(signal.SIG_BLOCK, STOP)  # from here, Ctrl-C is read by sigwait: a clean stop
        out(guide(stack, project))
        signo, dead = _wait_for_stop(stack)
        if dead is None:
            out(f"\n{signal.Signals(signo).name}: stopping everything…")
            stopped_cleanly = True
            return 0
        out(f"\n{dead.name} exited with {dead.process.returncode}; stopping everything…\n{dead.log_tail()}")
        return 1
    except (ServiceError, ProjectError, subprocess.CalledProcessError, OSError) as exc:
        out(f"\na service did not start: {exc}")
        return 1
    except KeyboardInterrupt:  # during start-up: whole_loop has stopped what it started
        stopped_cleanly = True
        return 130
    finally:
        if stack:
            stack.stop()
        while signal.sigtimedwait(STOP, 0):  # a second Ctrl-C while stopping: already done
            pass
        signal.pthread_sigmask(signal.SIG_UNBLOCK, STOP)
        if temporary and stopped_cleanly:
            shutil.rmtree(workdir, ignore_errors=True)
        elif not stopped_cleanly:
            out(f"logs: {workdir}  (web.log, worker.log, beat.log, forge.log, workspace.log, mlflow.log)")


def _say(text: str) -> None:
    print(text, flush=True)  # at once, also into a pipe (`| tee`)


def _check_config(project: Project) -> None:
    """The config as the bot will load it, checked before anything starts (its errors name the key)."""
    text = project.config_text(**{p: f"http://127.0.0.1:9/{p.lower()}" for p in PLACEHOLDERS})
    try:
        parse_config(tomllib.loads(text), source="the config for " + project.repo)
    except ConfigError as exc:
        raise ProjectError(str(exc)) from None


def _show(out: Callable[[str], None], name: str, service: Service) -> None:
    out(f"  {name:<9} {service.url or f'pid {service.process.pid}'}")


def _wait_for_stop(stack: Setup) -> tuple[int, Service | None]:
    """The signal that asked us to stop, or the service that exited on its own."""
    while True:
        got = signal.sigtimedwait(STOP, 1.0)
        if got is not None:
            return got.si_signo, None
        for service in stack.services.values():
            if not service.alive():
                return 0, service


def guide(stack: Setup, project: Project) -> str:
    """The URLs, the people and what to type to try the bot on the repository."""
    forge, repo = stack.url("forge"), project.repo
    token = USERS[TRY_USER]
    api = f"{forge}/repos/{repo}"
    auth = shlex.quote(f"Authorization: token {token}")
    ws_auth = shlex.quote(f"Authorization: Bearer {WORKSPACE_TOKEN}")
    git_url = forge.replace("http://", f"http://{TRY_USER}:{token}@") + f"/{repo}.git"
    people = ", ".join(f"{u} {USERS[u]} ({p})" for u, p in PERMISSIONS.items() if u != "mlops-bot")
    if project.from_git:
        imported = ", ".join(branches(project.source))
        checkout = (
            f"  cd {shlex.quote(str(project.source))}\n"
            f"  git remote add sandbox {git_url}   # there from an earlier run? git remote set-url sandbox …"
        )
    else:
        imported = f"{project.default_branch} (the directory's files, one first commit)"
        checkout = f"  git clone -o sandbox {git_url} && cd {repo.split('/')[1]}"
    pr = json.dumps({"title": "Try the bot", "head": "BRANCH", "base": project.default_branch})
    comment = json.dumps({"body": "/train toy"})
    return f"""
Ready.
  repository  {forge}/{repo}   (branches: {imported})
  dashboard   {stack.url("web")}/?token={SECRETS["MLOPS_BOT_DASHBOARD_TOKEN"]}
  MLflow UI   {stack.url("mlflow")}
  jobs        curl -s -H {ws_auth} {stack.url("workspace")}/api/2.2/jobs/list   (a pushed branch's jobs)
  Slack       {stack.url("slack")}/sandbox/messages   (approval requests)
  config      {stack.config_path}   ({project.config_origin})
  people      {people}: their tokens for the forge's API and git

Try it as {TRY_USER} (BRANCH: a branch with a commit the forge has not seen yet):
{checkout}
  git push sandbox BRANCH
  curl -s -H {auth} -X POST {api}/pulls -d {shlex.quote(pr)}
  curl -s -H {auth} -X POST {api}/issues/1/comments -d {shlex.quote(comment)}
  the pull request's page: {forge}/{repo}/pull/1   (the bot's answers and reports)

bob (token {USERS["bob"]}) merges and approves: four eyes. /help on the PR lists the commands.
Ctrl-C stops everything."""
