"""The repository the whole loop hosts and the bot's config for it: the demo's acme/churn-model, or your own.

`own_project(PATH)` (`python -m devstack up --repo PATH`) takes a git repository with its branches and history (a
plain directory: its files, as one first commit), named `acme/<directory name>` unless told otherwise. Its config is
a template with the `${WEB_URL}` `${FORGE_URL}` `${MLFLOW_URL}` `${SLACK_URL}` `${WORKSPACE_URL}` placeholders, as
examples/demo.config.toml: given with `--config`, or made for the repository — the demo's central settings and a
`[[repos]]` entry naming its own pipeline file when it has `mlops-bot.toml` at its root, else the demo's workflows
pointed at it.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import tomllib
from dataclasses import dataclass
from pathlib import Path
from string import Template
from typing import Any

from devstack import ROOT
from devstack.principals import TOKENS, Grant, grants_for

EXAMPLE = ROOT / "examples" / "churn-model"
DEMO_REPO = "acme/churn-model"
DEMO_CONFIG = ROOT / "examples" / "demo.config.toml"
PIPELINE_FILE = "mlops-bot.toml"
PLACEHOLDERS = ("WEB_URL", "FORGE_URL", "MLFLOW_URL", "SLACK_URL", "WORKSPACE_URL")
LOCAL_ENVIRONMENTS = ("dev", "staging", "prod")  # examples/demo.config.toml's, one service principal each
_OWNER = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,38})$")  # what GitHub (and the forge) take
_NAME = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,99}$")


class ProjectError(ValueError):
    """The repository or its config cannot be hosted; the message says why and what to do."""


@dataclass(frozen=True)
class Project:
    """A repository on the forge (`repo`, imported from `source` with `default_branch` as its default) and the
    bot's config template for it."""

    repo: str
    source: Path
    config_template: str
    default_branch: str = "main"
    config_origin: str = ""  # where the template comes from, in a few words

    @property
    def from_git(self) -> bool:
        return is_git_repository(self.source)

    def config_text(self, **urls: str) -> str:
        """The config with the URLs of the started processes filled in."""
        try:
            return Template(self.config_template).substitute(urls)
        except KeyError as exc:
            raise ProjectError(
                f"the config template uses ${{{exc.args[0]}}}; only {', '.join(f'${{{p}}}' for p in PLACEHOLDERS)} "
                "are filled in"
            ) from None
        except ValueError as exc:
            raise ProjectError(f"the config template: {exc} (write a dollar sign as $$)") from None

    def pipelines(self, config: dict[str, Any]) -> dict[str, dict[str, Any]]:
        """This repository's own pipeline file, parsed, when the config names one for it (by repository name)."""
        for entry in config.get("repos") or []:
            name, file = str(entry.get("name", "")), str(entry.get("pipeline_file", ""))
            if name.lower() != self.repo.lower() or not file:
                continue
            text = read_file(self.source, self.default_branch, file)
            if text is None:
                raise ProjectError(
                    f"{self.repo}: the config names pipeline_file = {file!r}, and the repository has no such file "
                    f"on {self.default_branch}"
                )
            try:
                return {self.repo: tomllib.loads(text)}
            except tomllib.TOMLDecodeError as exc:
                raise ProjectError(f"{file} on {self.default_branch}: {exc}") from None
        return {}

    def teams(self) -> list[str]:
        """Every `org/team` the config (and the repository's own pipeline file) names as approvers."""
        config = tomllib.loads(self.config_text(**{p: "http://127.0.0.1:9" for p in PLACEHOLDERS}))
        named: list[str] = []
        for source in (config, *self.pipelines(config).values()):
            for model in (source.get("models") or {}).values():
                for stage in [model, *(model.get("stages") or [])]:
                    named += [a for a in stage.get("approvers") or [] if a.startswith("@")]
        for repo in config.get("repos") or []:
            named += [a for a in (repo.get("guard_rails") or {}).get("approvers", []) if a.startswith("@")]
        return sorted({a[1:] for a in named})

    def grants(self, config_text: str) -> list[Grant]:
        """The Unity Catalog grants the config's registry names need (devstack/principals.py)."""
        config = tomllib.loads(config_text)
        try:
            return grants_for(config, self.pipelines(config))
        except ValueError as exc:  # a model or stage the release train would refuse
            raise ProjectError(f"the registry names of {self.repo}'s models: {exc}") from None


def demo_project() -> Project:
    """acme/churn-model (examples/churn-model, one first commit) with examples/demo.config.toml."""
    return Project(DEMO_REPO, EXAMPLE, DEMO_CONFIG.read_text(), config_origin="examples/demo.config.toml")


def own_project(path: Path, *, config: Path | None = None, name: str | None = None) -> Project:
    """Your repository at `path`, named `name` (default `acme/<directory name>`), with the config template at
    `config` (default: one made for it)."""
    source = Path(path).expanduser().resolve()
    if not source.is_dir():
        raise ProjectError(f"--repo {path}: not a directory")
    repo = name or f"acme/{source.name}"
    owner, _, short = repo.partition("/")
    if not _OWNER.match(owner) or not _NAME.match(short) or short.endswith(".git"):
        raise ProjectError(
            f"{'--name' if name else 'the repository name'} {repo!r}: write it as owner/repo (letters, digits, "
            "'-', and '.' or '_' in the repository part)" + ("" if name else "; give one with --name")
        )
    branch = default_branch(source)
    if config is None:
        own = read_file(source, branch, PIPELINE_FILE) is not None
        template = generated_config(repo, branch, has_pipeline_file=own)
        origin = f"its own {PIPELINE_FILE}, local guard rails" if own else "the demo's workflows, pointed at it"
    else:
        try:
            template = Path(config).read_text()
        except OSError as exc:
            raise ProjectError(f"--config {config}: {exc.strerror}") from None
        origin = f"from {config}"
    project = Project(repo, source, template, branch, origin)
    _check_names_the_repo(project, f"--config {config}" if config else "the generated config")
    return project


def generated_config(repo: str, branch: str, *, has_pipeline_file: bool) -> str:
    """The config template made for `repo`: its own pipeline file with local guard rails, or the demo's workflows."""
    demo = DEMO_CONFIG.read_text()
    if not has_pipeline_file:
        text = demo.replace(DEMO_REPO, repo)
        if branch != "main":
            text = text.replace('\ndefault_branch = "main"', f"\ndefault_branch = {json.dumps(branch)}", 1)
        return text
    central = demo[: demo.index("\n[[repos]]") + 1]  # environments, principals, permissions, Slack...: the demo's
    return central + (
        "[[repos]]\n"
        f"name = {json.dumps(repo)}\n"
        f"default_branch = {json.dumps(branch)}\n"
        'code_source = "git"\n'
        f"git_url = {json.dumps('${FORGE_URL}/' + repo + '.git')}\n"
        f"pipeline_file = {json.dumps(PIPELINE_FILE)}   # the repository's own workflows and models\n"
        "[repos.guard_rails]             # local: whatever the three environments and their catalogs hold\n"
        f"environments = {json.dumps(list(LOCAL_ENVIRONMENTS))}\n"
        f"registry_names = {json.dumps([f'{e}.*' for e in LOCAL_ENVIRONMENTS])}\n"
    )


def _check_names_the_repo(project: Project, where: str) -> None:
    """The config must serve the repository (else the bot would ignore all its events), on its default branch, and
    run jobs as principals the local workspace knows."""
    text = project.config_text(**{p: f"http://{p.lower()}.invalid" for p in PLACEHOLDERS})
    try:
        config = tomllib.loads(text)
    except tomllib.TOMLDecodeError as exc:
        raise ProjectError(f"{where}: {exc}") from None
    entries = {str(r.get("name", "")).lower(): r for r in config.get("repos") or []}
    entry = entries.get(project.repo.lower())
    if entry is None:
        named = ", ".join(entries) or "none"
        raise ProjectError(
            f"{where} has no [[repos]] entry named {project.repo} (it names: {named}); the bot would ignore every "
            "event of the repository: add one, or pass --name"
        )
    branch = entry.get("default_branch", "main")
    if branch != project.default_branch:
        raise ProjectError(
            f"{where}: {project.repo}'s default_branch is {branch!r}, and the repository's is "
            f"{project.default_branch!r} (main, else master, else the branch checked out)"
        )
    for env, spec in (config.get("environments") or {}).items():
        principal = (spec or {}).get("run_as_service_principal", "")
        if principal and principal not in TOKENS:
            raise ProjectError(
                f"{where}: environments.{env}.run_as_service_principal {principal!r} is not one of the local "
                f"workspace's service principals ({', '.join(TOKENS)}: devstack/principals.py)"
            )


# --- the source repository --------------------------------------------------------------------------------------
def is_git_repository(path: Path) -> bool:
    """A repository's top level (as the forge's seed tells them apart: a plain directory inside one is not)."""
    return (path / ".git").exists() or ((path / "HEAD").is_file() and (path / "objects").is_dir())


def git(path: Path, *args: str) -> subprocess.CompletedProcess:
    # no GIT_DIR or GIT_WORK_TREE from around us: `-C path` says which repository
    env = {k: v for k, v in os.environ.items() if not k.startswith("GIT_")}
    return subprocess.run(
        ["git", "-C", str(path), *args],
        capture_output=True,
        text=True,
        env={**env, "GIT_TERMINAL_PROMPT": "0", "LC_ALL": "C"},
    )


def branches(path: Path) -> list[str]:
    """The repository's branches (a plain directory: the one the forge makes, main)."""
    if not is_git_repository(path):
        return ["main"]
    return sorted(git(path, "for-each-ref", "--format=%(refname:lstrip=2)", "refs/heads/").stdout.split())


def default_branch(path: Path) -> str:
    """main, else master, else the branch checked out, else the first branch."""
    found = branches(path)
    if not found:
        raise ProjectError(f"{path}: a git repository without a commit yet; commit something first")
    current = git(path, "symbolic-ref", "--quiet", "--short", "HEAD").stdout.strip()
    return next(b for b in ("main", "master", current, found[0]) if b in found)


def read_file(path: Path, branch: str, name: str) -> str | None:
    """`name` as committed on `branch` (a plain directory: as it is); None when there is no such file."""
    if not is_git_repository(path):
        file = path / name
        return file.read_text() if file.is_file() else None
    shown = git(path, "show", f"refs/heads/{branch}:{name}")
    return shown.stdout if shown.returncode == 0 else None
