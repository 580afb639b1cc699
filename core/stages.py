"""[models.<name>] and its release train: the stages a model passes, in order, and the rules they keep.

    dev      trigger = "pull_request"  `/train` on a PR trains in dev, registers in the dev registry
    staging  trigger = "merge"         a push to the default branch that merges a PR: train + validate
    prod     trigger = "approval"      people approve; the version is copied (or re-trained) into prod

Nothing started from a pull request may write to the staging or prod registry: every stage has its
own registry name, distinct across all models, and the first stage is the only one a PR starts.
The model's own `approvers`, `required_approvals`, `validate_workflow` and `deploy_workflow` are the
defaults of its stages, so a config written before stages existed keeps its meaning. Where neither the
stage nor the model names a workflow, it is the repository's workflow for the command that runs it
(`command = "train"`, `command = "deploy"`: core/triggers.py), else the one named `train` or `deploy`.
"""

from __future__ import annotations

import re
from collections.abc import Collection, Mapping
from typing import TYPE_CHECKING, Any, Literal

from pydantic import BaseModel, ConfigDict, Field, field_validator, model_validator

from core.commands import WORKFLOW_COMMANDS
from core.vocabulary import GATE, GATE_HELP

if TYPE_CHECKING:  # config.py builds on this module
    from core.config import Settings

Trigger = Literal["pull_request", "merge", "approval"]
ORDER: dict[str, int] = {"pull_request": 0, "merge": 1, "approval": 2}
DEFAULT_STAGES = {"dev": "pull_request", "staging": "merge", "prod": "approval"}
TRAIN_WORKFLOW = "train"
THREE_LEVELS = re.compile(r"^[^.\s/]+\.[^.\s/]+\.[^.\s/]+$")
# a GitHub login, or a team written as @org/team-slug
_APPROVER = re.compile(r"^(@[A-Za-z0-9][A-Za-z0-9-]*/[A-Za-z0-9][A-Za-z0-9_.-]*|[A-Za-z0-9][A-Za-z0-9-]*)$")


def check_approvers(v: list[str] | None) -> list[str] | None:
    for a in v or []:
        if not _APPROVER.match(a):
            raise ValueError(f"approver {a!r}: a GitHub login (bob) or a team (@acme/ml-leads)")
    return v


class Stage(BaseModel):
    """One stage as written in `[[models.<name>.stages]]`; `resolve_stages` fills in the defaults."""

    model_config = ConfigDict(extra="forbid", frozen=True, populate_by_name=True)
    name: str = Field(pattern=r"^[A-Za-z0-9_-]+$")
    trigger: Trigger
    environment: str = ""  # default: the stage's name when [environments] has it, else its workflow's
    registry_name: str = ""  # default: the model's name on the last stage, `<name>-<stage>` (UC: `_<stage>`) before
    workflow: str = ""  # default: /train's workflow (pull_request, merge), the model's deploy workflow (approval)
    validate_workflow: str | None = Field(None, alias="validate")  # default on merge: the model's validate_workflow
    dataset: str = ""  # pull_request: the /train default; merge: default "full" when the workflow has it
    retrain: bool = False  # approval: re-train in prod from the approved commit instead of copying the version
    required_approvals: int | None = Field(None, ge=1)  # approval; default: the model's
    approvers: list[str] | None = None  # approval; logins or @org/team; default: the model's

    @model_validator(mode="before")
    @classmethod
    def _default_trigger(cls, data: Any) -> Any:
        if (
            isinstance(data, dict)
            and "trigger" not in data
            and isinstance(data.get("name"), str)
            and data["name"] in DEFAULT_STAGES
        ):
            return {**data, "trigger": DEFAULT_STAGES[data["name"]]}
        return data

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: list[str] | None) -> list[str] | None:
        return check_approvers(v)


class Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)
    repo: str = ""
    approvers: list[str] = []
    required_approvals: int = Field(1, ge=1)
    gates: list[str] = []
    validate_workflow: str = "validate"
    deploy_workflow: str = "deploy"
    stages: list[Stage] = []  # empty: dev → staging → prod with every default

    @field_validator("gates")
    @classmethod
    def _gates(cls, v: list[str]) -> list[str]:
        for g in v:
            if not GATE.match(g):
                raise ValueError(f"gate {g!r}: {GATE_HELP}")
        return v

    @field_validator("approvers")
    @classmethod
    def _approvers(cls, v: list[str]) -> list[str]:
        return check_approvers(v) or []


def default_registry_name(model: str, stage: str, last: bool, uc: bool) -> str:
    """The last stage writes the model's own name; earlier ones a name of their own, in the same schema."""
    if last:
        return model
    return f"{model}_{stage}" if uc else f"{model}-{stage}"


def deploy_workflow(model: Model, commands: Mapping[str, str]) -> str:
    """The workflow that deploys the model: its `deploy_workflow`, else the repository's for `/deploy`."""
    if "deploy_workflow" in model.model_fields_set:
        return model.deploy_workflow
    return commands.get("deploy", model.deploy_workflow)


def resolve_stages(
    name: str,
    model: Model,
    *,
    uc: bool,
    environments: Collection[str],
    workflows: Mapping[str, Any],
    commands: Mapping[str, str] | None = None,
) -> list[Stage]:
    """The model's stages with every default filled in (the three default stages when none are written);
    `commands`: command → the workflow it runs in the model's repository (`Settings.commands`)."""
    commands = commands or {}
    written = model.stages or [Stage.model_validate({"name": s, "trigger": t}) for s, t in DEFAULT_STAGES.items()]
    train = commands.get("train", TRAIN_WORKFLOW)
    out = []
    for i, stage in enumerate(written):
        approval = stage.trigger == "approval"
        workflow = stage.workflow or (deploy_workflow(model, commands) if approval else train)
        env = stage.environment or (
            stage.name if stage.name in environments or workflow not in workflows else workflows[workflow].environment
        )
        validate = stage.validate_workflow
        if validate is None:
            validate = model.validate_workflow if stage.trigger == "merge" else ""
        filled: dict[str, Any] = {
            "dataset": stage.dataset or _dataset(stage.trigger, workflows.get(workflow)),
            "environment": env,
            "workflow": workflow,
            "validate_workflow": validate,
            "registry_name": stage.registry_name
            or default_registry_name(name, stage.name, i == len(written) - 1 and approval, uc),
        }
        if approval:
            filled["approvers"] = model.approvers if stage.approvers is None else stage.approvers
            filled["required_approvals"] = stage.required_approvals or model.required_approvals
        out.append(stage.model_copy(update=filled))
    return out


def _dataset(trigger: str, workflow: Any) -> str:
    """What the merge stage trains on: `full` when the workflow offers it (what was merged meets real data)."""
    if trigger == "merge" and workflow is not None and "full" in workflow.datasets:
        return "full"
    return ""


def check_stages(
    models: Mapping[str, Model],
    *,
    uc: bool,
    environments: Collection[str],
    workflows: Mapping[str, Any],
    commands: Mapping[str, Mapping[str, str]] | None = None,
) -> None:
    """Every model's train keeps the rules; written stages are checked in full, the default ones for names.
    `commands`: per model, command → the workflow it runs in the model's repository."""
    owners: dict[str, str] = {}  # registry name -> the stage that writes it
    for name, model in models.items():
        own = (commands or {}).get(name)
        stages = resolve_stages(name, model, uc=uc, environments=environments, workflows=workflows, commands=own)
        if model.stages:
            _check_order(name, stages)
            for i, stage in enumerate(stages):
                _check_stage(f"models.{name}.stages[{i}]", stage, environments, workflows)
        for i, stage in enumerate(stages):
            key = f"models.{name}.stages[{i}].registry_name"
            if uc and not THREE_LEVELS.match(stage.registry_name):
                raise ValueError(
                    f"{key}: with [mlflow] registry_uri = 'databricks-uc' a registry name has three levels, "
                    f"catalog.schema.model; got {stage.registry_name!r}"
                )
            other = owners.setdefault(stage.registry_name, f"models.{name}.stages[{i}] ({stage.name})")
            if not other.startswith(f"models.{name}.stages[{i}] "):
                raise ValueError(
                    f"{key}: {stage.registry_name!r} is also written by {other}; every stage needs a registry name "
                    "of its own, or a pull request could write to the staging or prod registry"
                )


def _check_order(name: str, stages: list[Stage]) -> None:
    key = f"models.{name}.stages"
    seen: dict[str, int] = {}
    for i, stage in enumerate(stages):
        if stage.name in seen:
            raise ValueError(f"{key}[{i}].name: {stage.name!r} is already stages[{seen[stage.name]}]'s name")
        seen[stage.name] = i
        if i and ORDER[stage.trigger] < ORDER[stages[i - 1].trigger]:
            raise ValueError(
                f"{key}[{i}].trigger: {stage.trigger!r} after {stages[i - 1].trigger!r}; "
                "stages go pull_request → merge → approval"
            )
    if stages[0].trigger != "pull_request":
        raise ValueError(f'{key}[0].trigger: the first stage starts from a pull request (trigger = "pull_request")')
    if stages[-1].trigger != "approval":
        raise ValueError(
            f'{key}[{len(stages) - 1}].trigger: the last stage is approved by people (trigger = "approval")'
        )
    for trigger in ORDER:
        if sum(s.trigger == trigger for s in stages) > 1:
            raise ValueError(f"{key}: more than one stage with trigger = {trigger!r}; one of each for now")
    if not any(s.trigger == "merge" for s in stages):
        raise ValueError(
            f'{key}: no stage with trigger = "merge"; a pull request\'s model must pass the default branch '
            "(staging) before anyone can approve it for prod"
        )


def _check_stage(key: str, stage: Stage, environments: Collection[str], workflows: Mapping[str, Any]) -> None:
    if stage.environment not in environments:
        raise ValueError(f"{key}.environment: {stage.environment!r} is not in [environments]")
    for field, workflow in (("workflow", stage.workflow), ("validate", stage.validate_workflow)):
        if workflow and workflow not in workflows:
            raise ValueError(f"{key}.{field}: {workflow!r} is not in [workflows]")
    if stage.trigger != "approval":
        if stage.retrain:
            raise ValueError(
                f'{key}.retrain: only an approval stage (trigger = "approval") re-trains in its environment'
            )
        for field in ("required_approvals", "approvers"):
            if field in stage.model_fields_set:
                raise ValueError(f'{key}.{field}: only an approval stage (trigger = "approval") takes {field}')


# --- the release train: which stage is which -----------------------------------------------------------
def stage(settings: Settings, model: str, trigger: str) -> Stage:
    """The model's stage started by `trigger` (pull_request: dev, merge: staging, approval: prod)."""
    return next(s for s in settings.stages(model) if s.trigger == trigger)


def owner_of(settings: Settings, registry_name: str) -> tuple[str, Stage] | None:
    """(model, stage) whose registry is `registry_name` (every stage writes a name of its own), or None."""
    for model in settings.models:
        for s in settings.stages(model):
            if s.registry_name == registry_name:
                return model, s
    return None


def release_ref(settings: Settings, name: str) -> tuple[str, Stage] | None:
    """What `/approve <name>@<version>` means: a model's name, or its staging registry's, → (model, staging)."""
    if name in settings.models:
        return name, stage(settings, name, "merge")
    owner = owner_of(settings, name)
    return owner if owner and owner[1].trigger == "merge" else None


def dev_models(settings: Settings, repo: str, workflow: str) -> list[tuple[str, Stage]]:
    """The models a PR's run of `workflow` trains: the repository's whose dev stage runs that workflow, in order."""
    found = ((model, stage(settings, model, "pull_request")) for model in settings.models_for_repo(repo))
    return [(model, dev) for model, dev in found if dev.workflow == workflow]


def dev_model(settings: Settings, repo: str, workflow: str, model: str = "") -> tuple[str, Stage] | None:
    """The model a PR's run of `workflow` trains: `model` (one of several), else the first of `dev_models`."""
    return next((found for found in dev_models(settings, repo, workflow) if found[0] == model or not model), None)


def stage_named(settings: Settings, model: str, name: str) -> Stage | None:
    """A stage by its name or its environment's (`/deploy prod`)."""
    stages = settings.stages(model)
    return next((s for s in stages if s.name == name), None) or next((s for s in stages if s.environment == name), None)


# --- who each stage's jobs run as (`mlops-bot check-config`) ----------------------------------------------
def principal_problems(settings: Settings) -> list[str]:
    """What lets a pull request's code act as staging or prod: its stage's environment names no `run_as`, or
    the one a staging or prod environment names (or a repository's, which every stage shares). One line each,
    naming the key; empty when every model's pull-request stage runs as a principal of its own."""
    problems: list[str] = []
    for name in settings.models:
        stages = settings.stages(name)
        pr = next(i for i, s in enumerate(stages) if s.trigger == "pull_request")
        repo = next(
            (i for i, r in enumerate(settings.repos) if r.name.lower() == settings.models[name].repo.lower()), None
        )
        if repo is not None and settings.repos[repo].run_as_service_principal:
            problems.append(
                f"repos[{repo}].run_as_service_principal: every job of {settings.repos[repo].name} would run as "
                f"{settings.repos[repo].run_as_service_principal!r}, models.{name}'s pull requests and "
                "staging and prod alike; name run_as_service_principal per environment instead"
            )
            continue
        problems += _pr_stage_problems(settings, name, stages, pr)
    return list(dict.fromkeys(problems))


def _pr_stage_problems(settings: Settings, model: str, stages: list[Stage], pr: int) -> list[str]:
    env = stages[pr].environment
    key = f"environments.{env}.run_as_service_principal"
    where = f"models.{model}.stages[{pr}] ({stages[pr].name})"
    principal = settings.environments[env].run_as_service_principal if env in settings.environments else ""
    if not principal:
        return [
            f"{key}: {where} runs pull requests' code in {env!r}, which names no service principal to run it "
            "as, so it would run as the bot; name one of its own (not staging's or prod's)"
        ]
    problems = []
    for i, later in enumerate(stages):
        if later.trigger == "pull_request":
            continue
        other = settings.environments.get(later.environment)
        theirs = f"models.{model}.stages[{i}] ({later.name})"
        if later.environment == env:
            problems.append(
                f"models.{model}.stages[{i}].environment: {theirs} runs in {env!r}, where {where} runs pull "
                "requests' code as the same principal; give it an environment of its own"
            )
        elif other is not None and other.run_as_service_principal == principal:
            problems.append(
                f"{key}: {principal!r} is also environments.{later.environment}.run_as_service_principal, "
                f"which {theirs} runs as, so a pull request's code could write its registry; give each "
                "stage a principal of its own"
            )
    return problems


# --- what a repository's commands and stages run (`mlops-bot check-config`'s warnings) ----------------------
def pipeline_warnings(settings: Settings) -> list[str]:
    """Per repository: a command that runs a workflow but has none there, a model's stage that runs a workflow the
    repository lacks. Warnings, not failures: the command answers so when asked, the release train when it gets there.
    `/deploy` runs its model's deploy workflow: the stages' line says when it lacks one."""
    warnings: list[str] = []
    for repo in settings.repos:
        if repo.pipeline_file:  # its commands are its file's: `check-config --pipeline FILE`, and the PR's plan
            continue
        workflows, commands = settings.repo_workflows(repo), settings.commands(repo.name)
        warnings += [
            f'{repo.name}: /{c}: no workflow has command = "{c}"; /{c} will answer so'
            for c in WORKFLOW_COMMANDS
            if c not in commands and c != "deploy"
        ]
        for model in settings.models_for_repo(repo.name):
            warnings += [f"{repo.name}: models.{model}: {w}" for w in _missing_workflows(settings, model, workflows)]
    return warnings


def _missing_workflows(settings: Settings, model: str, workflows: Collection[str]) -> list[str]:
    """The model's stages' workflows that `workflows` (its repository's) lacks, each with how to name one."""
    missing: dict[tuple[str, str], list[str]] = {}  # (workflow, how to name one) -> the stages that run it
    for s in settings.stages(model):
        runs = (
            f'write deploy_workflow in [models.{model}], or give the workflow command = "deploy"'
            if s.trigger == "approval"
            else 'give the training workflow command = "train"'
        )
        for w, hint in ((s.workflow, runs), (s.validate_workflow, f"write validate_workflow in [models.{model}]")):
            if w and w not in workflows:
                missing.setdefault((w, hint), []).append(s.name)
    return [
        f"its {' and '.join(names)} stage{'s' if len(names) > 1 else ''} run{'' if len(names) > 1 else 's'} {w!r}, "
        f"which is no workflow of its repository; the release train stops there ({hint})"
        for (w, hint), names in missing.items()
    ]
