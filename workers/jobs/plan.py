"""The plan of a pull request's pipeline file, pure: in plain words, the jobs it creates, changes (with the
fields: "cluster `big`: 2 → 8 workers", "+ task `explain`") or removes, and what it changes in the models'
release rules — or every refusal, naming the key and the guard rail. Shown as the `mlops-bot/pipeline` check
and as one comment on the pull request (workers/pr/pipeline.py), like `terraform plan` under Atlantis.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from core.config import Settings, Workflow
from workers.escaping import md_code

PLAN_CONTEXT = "mlops-bot/pipeline"
SHOWN = 12  # field changes listed per job or model, the rest counted


@dataclass(frozen=True)
class Change:
    kind: str  # create | change | remove
    what: str  # "job `fit`", "model `card_fraud`"
    details: tuple[str, ...] = ()


def _flat(value: Any, path: str = "") -> dict[str, Any]:
    """A workflow or model as `path -> value` leaves; tasks by their key, so a new task is one line, not a shift."""
    if isinstance(value, dict):
        out: dict[str, Any] = {}
        for k, v in value.items():
            out.update(_flat(v, f"{path}.{k}" if path else str(k)))
        return out
    if isinstance(value, list) and value and all(isinstance(v, dict) and "key" in v for v in value):
        return _flat({f"task `{v['key']}`": {k: x for k, x in v.items() if k != "key"} for v in value}, path)
    return {path: value}


def _workers(cluster: dict) -> Any:
    scale = cluster.get("autoscale")
    return f"{scale['min_workers']}–{scale['max_workers']}" if scale else cluster.get("num_workers")


def _workflow_details(before: Workflow, after: Workflow) -> list[str]:
    out = []
    old_tasks, new_tasks = {t.key for t in before.tasks}, {t.key for t in after.tasks}
    out += [f"+ task `{k}`" for k in sorted(new_tasks - old_tasks)]
    out += [f"− task `{k}`" for k in sorted(old_tasks - new_tasks)]
    old_dump, new_dump = before.model_dump(), after.model_dump()
    for name in sorted(set(old_dump["job_clusters"]) | set(new_dump["job_clusters"])):
        a, b = old_dump["job_clusters"].get(name), new_dump["job_clusters"].get(name)
        if a and b and _workers(a) != _workers(b):
            out.append(f"cluster `{name}`: {_workers(a)} → {_workers(b)} workers")
    old, new = _flat(old_dump), _flat(new_dump)
    for path in sorted(set(old) | set(new)):
        if old.get(path) == new.get(path) or _shown_already(path, old_tasks ^ new_tasks):
            continue
        out.append(f"{path}: {_value(old.get(path))} → {_value(new.get(path))}")
    return out


def _shown_already(path: str, added_or_removed: set[str]) -> bool:
    if path.startswith("job_clusters.") and path.endswith((".num_workers", ".min_workers", ".max_workers")):
        return True
    return any(path.startswith(f"tasks.task `{k}`") for k in added_or_removed)


def _value(v: Any) -> str:
    if v is None or v == "" or v == [] or v == {}:
        return "(none)"
    return md_code(v if isinstance(v, str) else str(v), cell=True)


def plan(before: Settings | None, after: Settings, repo: str) -> list[Change]:
    """What `after` (the PR's file) changes against `before` (the base's; None when the base has no file)."""
    old_wf = before.repo_workflows(before.repo(repo)) if before and before.repo(repo) else {}  # type: ignore[arg-type]
    new_wf = after.repo_workflows(after.repo(repo)) if after.repo(repo) else {}  # type: ignore[arg-type]
    changes = [Change("create", f"job `{n}`", (_summary(wf),)) for n, wf in new_wf.items() if n not in old_wf]
    for name in sorted(set(old_wf) & set(new_wf)):
        changed = _workflow_details(old_wf[name], new_wf[name])
        if changed:
            changes.append(Change("change", f"job `{name}`", tuple(changed)))
    changes += [Change("remove", f"job `{n}`") for n in old_wf if n not in new_wf]
    old_models = before.models if before else {}
    for name, model in after.models.items():
        if name not in old_models:
            changes.append(
                Change("create", f"model `{name}`", (f"stages {' → '.join(s.name for s in after.stages(name))}",))
            )
            continue
        old, new = _flat(old_models[name].model_dump()), _flat(model.model_dump())
        details = tuple(
            f"{p}: {_value(old.get(p))} → {_value(new.get(p))}"
            for p in sorted(set(old) | set(new))
            if old.get(p) != new.get(p)
        )
        if details:
            changes.append(Change("change", f"model `{name}`", details))
    changes += [Change("remove", f"model `{n}`") for n in old_models if n not in after.models]
    return changes


def _summary(wf: Workflow) -> str:
    tasks = " → ".join(t.key for t in wf.tasks)
    return f"{wf.compute} in {wf.environment}: {tasks}"


_KIND = {"create": "+ create", "change": "~ change", "remove": "− remove"}


def render(source: str, changes: list[Change], warnings: list[str] | None = None) -> str:
    """The plan as the PR comment and check summary show it; `warnings`: what its commands and stages would not run."""
    said = "".join(f"\n- ⚠️ {md_code(w)}" for w in warnings or [])
    said = f"\n\nWhat would not run:{said}" if said else ""
    if not changes:
        return f"### Pipeline plan: `{source}`\n\nNo job or model changes.{said}"
    rows = []
    for c in changes:
        shown = list(c.details[:SHOWN]) + ([f"… and {len(c.details) - SHOWN} more"] if len(c.details) > SHOWN else [])
        rows.append(f"| {_KIND[c.kind]} | {c.what} | {'<br>'.join(shown)} |")
    models = any(c.what.startswith("model") for c in changes)
    note = (
        "\n\nModel changes (gates, validation, approvals) apply from the next merge's release: a release follows "
        "the default branch's file as it was before its own merge."
        if models
        else ""
    )
    return (
        f"### Pipeline plan: `{source}`\n\n| | what | changes |\n|---|---|---|\n"
        + "\n".join(rows)
        + "\n\nEach branch's jobs follow its own file on its next push (those it may run: where pull requests train)."
        + note
        + said
    )


def render_refused(source: str, problems: list[str]) -> str:
    lines = "\n".join(f"- {md_code(p)}" for p in problems)
    return (
        f"### Pipeline plan: `{source}` is refused\n\nNothing runs from this commit until the file validates "
        f"and stays within the repository's guard rails ([repos.guard_rails] in the bot's config):\n\n{lines}"
    )


def headline(changes: list[Change]) -> str:
    """The check's one line: "2 to create, 1 to change, 0 to remove"."""
    count = {k: sum(c.kind == k for c in changes) for k in _KIND}
    return f"{count['create']} to create, {count['change']} to change, {count['remove']} to remove"
