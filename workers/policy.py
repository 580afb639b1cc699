"""Every decision the workers make, as pure functions of plain values: who may run which command,
what `/train` and `/test` accept, when a fork's PR may run, who may approve a model version, and
how a version compares with the champion. No I/O: the services gather the facts and act.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from bot.commands import COMMANDS
from bot.config import PERMISSION_RANK, Settings
from bot.stages import Stage
from bot.vocabulary import FAILED, GOOD, workflow_of_check
from workers import release_texts as rt
from workers import texts
from workers.gates import GateResult, evaluate_all
from workers.gateways import Pull
from workers.records import ApprovalRequest, RunRecord

# decisions written to the audit trail at most once per version (an approval once per approver)
AUDIT_ONCE = frozenset({"validated", "requested", "promoted", "rejected", "deployed"})


class Refusal(Exception):
    """The command will not run: `reason` is told to the person, with `usage` when it helps."""

    def __init__(self, reason: str, usage: str = ""):
        super().__init__(reason)
        self.reason, self.usage = reason, usage


# --- permissions ----------------------------------------------------------------------------------
def ranks_at_least(role: str, needed: str) -> bool:
    """The one permission-rank check: a custom role (`ml-engineer (write)`) ranks as its base role;
    anything unknown ranks as none."""
    return PERMISSION_RANK.get(base_role(role), 0) >= PERMISSION_RANK[needed]


def base_role(role: str) -> str:
    """`write` for `write` and for a custom role shown as `ml-engineer (write)` (workers/gateways/forge.py)."""
    name, _, base = role.rstrip(")").rpartition(" (")
    return base if name and role.endswith(")") else role


def permission_refusal(settings: Settings, repo: str, command: str, role: str) -> str | None:
    """Why `role` may not run `/command` on `repo`, or None when it may."""
    needed = settings.permissions.needed(command)
    return None if ranks_at_least(role, needed) else texts.needs_permission(command, needed, repo, role)


def commands_allowed(settings: Settings, role: str) -> list[str]:
    """The commands `/help` lists for this role, in the order of the command table."""
    return [name for name in COMMANDS if ranks_at_least(role, settings.permissions.needed(name))]


# --- /train and /test -------------------------------------------------------------------------------
def train_options(settings: Settings, repo: str, command: dict, user: str, role: str) -> tuple[str, dict]:
    """(dataset, params) for `/train`, or Refusal: known dataset, `full` reserved, allowed params only."""
    wf = settings.workflows.get("train")
    if wf is None:
        raise Refusal(texts.no_workflow("train"))
    dataset = command.get("dataset") or wf.dataset
    if dataset not in wf.datasets:
        raise Refusal(texts.unknown_choice("dataset", dataset, wf.datasets), COMMANDS["train"].usage)
    if dataset == "full":
        why = permission_refusal(settings, repo, "train-full", role)
        if why:
            raise Refusal(why)
        users = settings.permissions.train_full_users
        if users and user.lower() not in {u.lower() for u in users}:
            raise Refusal(texts.full_training_reserved(users))
    params = command.get("params") or {}
    bad = sorted(set(params) - set(wf.params_allowed))
    if bad:
        raise Refusal(texts.parameter_not_allowed(bad[0], "train", wf.params_allowed), COMMANDS["train"].usage)
    return dataset, params


def test_suite(settings: Settings, command: dict) -> str:
    """The suite for `/test`, or Refusal."""
    wf = settings.workflows.get("test")
    if wf is None:
        raise Refusal(texts.no_workflow("test"))
    suite = command.get("suite", "")
    if suite and wf.suites and suite not in wf.suites:
        raise Refusal(texts.unknown_choice("suite", suite, wf.suites), COMMANDS["test"].usage)
    return suite


# --- forks -----------------------------------------------------------------------------------------------
def head_refusal(pull: Pull, pr: int, ok_to_test_sha: str | None) -> str | None:
    """Why nothing may run for the PR's head now: closed, or a fork's head without `/ok-to-test`."""
    if pull.state != "open":
        return texts.pr_not_open(pr, pull.state)
    if pull.fork and ok_to_test_sha != pull.head_sha:
        return texts.fork_needs_ok_to_test(pull.head_sha)
    return None


def run_source(pull: Pull, pr: int) -> tuple[str, str]:
    """(branch, git_url): a fork's code runs from the fork's URL on a `pull/<n>` job of its own."""
    return (f"pull/{pr}", pull.head_clone_url) if pull.fork else (pull.head_ref, "")


# --- re-runs -------------------------------------------------------------------------------------------
def failed_latest(runs: Iterable[RunRecord]) -> list[RunRecord]:
    """The newest run of each workflow, where that run failed."""
    latest: dict[str, RunRecord] = {}
    for run in sorted(runs, key=lambda r: r.started_at):
        latest[run.workflow] = run
    return [r for r in latest.values() if r.state in FAILED]


def rerun_options(run: RunRecord) -> dict:
    """dataset/params/suite of a run, to start it again alike."""
    p = run.parameters
    params = dict(kv.split("=", 1) for kv in (p.get("params") or "").split(",") if "=" in kv)
    return {"dataset": p.get("dataset", ""), "params": params, "suite": p.get("suite", "")}


def check_workflow(settings: Settings, check_name: str) -> str | None:
    """The workflow a "Re-run" of this check run means, or None when the check is not ours."""
    workflow = workflow_of_check(check_name)
    return workflow if workflow in settings.workflows else None


# --- run results -----------------------------------------------------------------------------------------
def is_good(result: str) -> bool:
    return result in GOOD


def task_outputs(result: dict) -> dict:
    """Merge the JSON object each task printed last (steps end with one JSON line of results)."""
    merged: dict = {}
    for t in result.get("tasks", []):
        for line in reversed((t.get("output") or "").splitlines()):
            line = line.strip()
            if line.startswith("{") and line.endswith("}"):
                try:
                    merged.update(json.loads(line))
                except ValueError:
                    continue
                break
    return merged


@dataclass(frozen=True)
class Comparison:
    """A version's (or a run's) metrics against the champion, through the model's gates."""

    champion: dict | None
    gates: list[GateResult] = field(default_factory=list)

    @property
    def passed(self) -> bool:
        return all(g.passed for g in self.gates)


def compare(gates: list[str], metrics: dict[str, float], champion: dict | None, version: str = "") -> Comparison:
    """The one champion-and-gates evaluation; comparing a version with itself says nothing."""
    if champion and version and champion["version"] == str(version):
        champion = None
    return Comparison(champion, evaluate_all(gates, metrics, (champion or {}).get("metrics")))


def validation_outcome(result: str, outputs: dict, comparison: Comparison) -> tuple[bool, str]:
    """(passed, summary) of a finished validate run."""
    metrics = outputs.get("metrics") or {}
    if result == "SUCCESS" and "passed" not in outputs and not metrics:
        return False, texts.VALIDATION_SAID_NOTHING  # a run's success alone proves nothing about the model
    ran_ok = result == "SUCCESS" and outputs.get("passed", True) is not False
    passed = ran_ok and comparison.passed
    failed_gates = [f"{g.gate} ({g.detail})" for g in comparison.gates if not g.passed]
    return passed, texts.validation_summary(passed, ran_ok, metrics, failed_gates, result)


def ok_to_test_too_early(commented_at: str, pushed_at: str, sha: str) -> str | None:
    """`/ok-to-test` covers the head the maintainer looked at: a head pushed after the comment (both times
    GitHub's, ISO 8601) is not covered, whatever the order the bot hears of them in."""
    if not commented_at or not pushed_at:
        return None  # unknown: the head is the one the PR shows now, as before
    try:
        comment, push = (datetime.fromisoformat(t.replace("Z", "+00:00")) for t in (commented_at, pushed_at))
    except ValueError:
        return None
    return texts.head_moved_after_ok(sha) if push > comment else None


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


def dev_model(settings: Settings, repo: str, workflow: str) -> tuple[str, Stage] | None:
    """The model a PR's `/train` (of `workflow`) trains: the first of the repository's with that dev workflow."""
    for model in settings.models_for_repo(repo):
        dev = stage(settings, model, "pull_request")
        if dev.workflow == workflow:
            return model, dev
    return None


def stage_named(settings: Settings, model: str, name: str) -> Stage | None:
    """A stage by its name or its environment's (`/deploy prod`)."""
    stages = settings.stages(model)
    return next((s for s in stages if s.name == name), None) or next((s for s in stages if s.environment == name), None)


def deploy_refusal(settings: Settings, request: ApprovalRequest, name: str) -> str | None:
    """`/deploy` follows the chain: staging deploys a validated version, prod only an approved (promoted) one."""
    stage_ = stage_named(settings, request.model, name)
    ref = request.ref
    if stage_ is None or stage_.trigger == "pull_request":
        return rt.not_a_stage(name, [s.name for s in settings.stages(request.model) if s.trigger != "pull_request"])
    if stage_.trigger == "merge" and request.validation != "passed":
        return rt.deploy_chain(name, ref, f"it has not passed validation (validation: {request.validation})")
    if stage_.trigger == "approval" and (request.status != "approved" or not request.prod_version):
        return rt.deploy_chain(
            name, ref, f"a version reaches {stage_.name} only after it passed staging with the {request.needed} "
            f"approval(s) {stage_.name} requires (status: {request.status}, validation: {request.validation})",
        )  # fmt: skip
    return None


def approvals_needed(proven: bool, prod: Stage) -> int:
    """The prod stage's count; a version without lineage the bot can prove needs two listed approvers at least."""
    needed = prod.required_approvals or 1
    return needed if proven else max(needed, 2)


# --- approvals -------------------------------------------------------------------------------------------
def approval_refusal(
    request: ApprovalRequest | None,
    approver: str,
    role: str,
    settings: Settings,
    model: str,
    version: str,
    listed: bool = False,
) -> str | None:
    """The approval policy, as rules in order; returns the reason of the rule that refuses, or None.
    `listed`: the approver is one of the prod stage's approvers (a login, or a member of a listed team)."""
    why = texts.approval_refusals(model, version)
    if request is None:
        return why["none"]
    if request.status != "pending":
        return why["decided"].format(status=request.status)
    if request.validation != "passed":
        return why["unvalidated"].format(validation=request.validation)
    spec, needed = settings.models[request.model or model], settings.permissions.needed("approve")
    if not (ranks_at_least(role, needed) or listed):
        return why["permission"].format(needed=needed, repo=request.repo or spec.repo, approver=approver, role=role)
    if not request.proven and not listed:
        return why["unproven"].format(approvers=", ".join(stage(settings, request.model, "approval").approvers or []))
    roles = [
        what
        for who, what in ((request.pr_author, "opened the pull request"), (request.trained_by, "started the training"))
        if who and who.lower() == approver.lower()
    ]
    if roles:
        return why["four-eyes"].format(approver=approver, roles=" and ".join(roles))
    if approver.lower() in {a.by.lower() for a in request.approvals}:
        return why["twice"].format(approver=approver)
    return None


def audit_once_key(decision: str, model: str, version: str, actor: str) -> str:
    """What makes a decision unique in the audit trail ('' = every occurrence is recorded)."""
    if decision in AUDIT_ONCE:
        return f"{decision}:{model}:{version}"
    return f"{decision}:{model}:{version}:{actor}" if decision == "approved" else ""


def promoted_enough(request: ApprovalRequest, required: int) -> bool:
    return len(request.approvals) >= required
