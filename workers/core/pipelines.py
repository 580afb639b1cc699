"""Which pipeline a task works with: a repository's own file (core/pipeline.py) at the commit the work is
about, or the central config's workflows and models.

    a branch's jobs, a pull request's runs and commands     the file at the branch's (the PR's) head commit
    staging training, validation, approval, deploy, prod   the default branch's file as it was before the merge

A pull request's file decides only what runs on that pull request. What decides its release (gates, validation,
approvals, registries) is the default branch's file *before* the merge, found from GitHub's commit parents and
recorded when the release starts (`decide_release_pipeline`): a pull request's edits to the file apply from the
next merge's release, after review, never to its own. A file that does not validate, or leaves its guard rails, runs
nothing; the error names each key. The file at a commit never changes: it is read once and kept by commit.
"""

from __future__ import annotations

from dataclasses import replace

from core import stages
from core.config import Repo, Settings
from core.logs import get_logger
from core.pipeline import PipelineError, load_pipeline
from workers.core.context import Deps
from workers.errors import Permanent

log = get_logger("workers.core.pipelines")
_KEPT = 256  # effective settings kept in the process, by (repository, commit)
_effective: dict[tuple[str, str, str], tuple[Settings, Settings]] = {}


class PipelineRefused(Permanent):
    """The repository's pipeline file at a commit is missing, not valid, or outside its guard rails."""

    def __init__(self, source: str, lines: list[str]):
        self.source, self.lines = source, lines
        super().__init__(f"{source} does not validate, so nothing runs from it: " + "; ".join(lines))


def file_text(deps: Deps, repo: Repo, sha: str) -> str:
    """The pipeline file at `sha` ("" when the commit has none): kept by commit, else read from GitHub."""
    kept = deps.state.pipeline_text(repo.name, repo.pipeline_file, sha)
    if kept is not None:
        return kept
    text = deps.need_forge().file_at(repo.name, repo.pipeline_file, sha) or ""
    deps.state.keep_pipeline_text(repo.name, repo.pipeline_file, sha, text)
    return text


def settings_at(deps: Deps, repo: str, sha: str) -> Settings:
    """The settings a task about `repo` at commit `sha` works with (the central ones for a repository without a
    file of its own); PipelineRefused when its file at that commit cannot be used."""
    central = deps.central or deps.settings
    own = central.own_pipeline(repo)
    if own is None:
        return deps.settings if deps.central is None else central
    sha = deps.state.release_pipeline_commit(own.name, sha) or sha  # a release's merge: the file before it
    key = (own.name, own.pipeline_file, sha)
    kept = _effective.get(key)
    if kept and kept[0] is central:  # the central config reloaded: read again against the new one
        return kept[1]
    source = f"{own.pipeline_file} at {sha[:12]}"
    text = file_text(deps, own, sha)
    if not text:
        raise PipelineRefused(source, [f"no such file in {own.name} at this commit ([[repos]] pipeline_file)"])
    try:
        effective = load_pipeline(central, own, text, source)
    except PipelineError as exc:
        log.info("pipeline.refused", repo=own.name, sha=sha, problems=len(exc.lines))
        raise PipelineRefused(source, exc.lines) from None
    if len(_effective) >= _KEPT:
        _effective.pop(next(iter(_effective)))
    _effective[key] = (central, effective)
    return effective


def at(deps: Deps, repo: str, sha: str) -> Deps:
    """`deps` with the settings of `repo` at commit `sha` (unchanged for a repository without a file)."""
    effective = settings_at(deps, repo, sha)
    if effective is deps.settings:
        return deps
    central = deps.central or deps.settings
    return replace(deps, settings=effective, central=None if effective is central else central)


# --- the release train of a repository's own models ----
def decide_release_pipeline(deps: Deps, repo: str, pr: int, merge_sha: str) -> str:
    """The commit whose file decides the release of `merge_sha` (PR `pr` merged): the default branch before the
    merge, recorded for every later step (training, validation, approval, deploy all read it through `at`).

    A merge commit's first parent is that commit. A squash or rebase merge has one parent; a rebase merge of k
    commits made k new ones, so `merge_sha` is walked back by the PR's commit count: on a squash that reaches an
    older commit of the default branch — reviewed rules, never the pull request's own."""
    if (deps.central or deps.settings).own_pipeline(repo) is None:
        return merge_sha
    kept = deps.state.release_pipeline_commit(repo, merge_sha)
    if kept:
        return kept
    forge = deps.need_forge()
    parents = forge.commit_parents(repo, merge_sha)
    if len(parents) > 1:
        before = parents[0]
    else:
        before, steps = merge_sha, max(1, len(forge.pull_commits(repo, pr)))
        for _ in range(steps):
            parents = forge.commit_parents(repo, before)
            if not parents:
                raise Permanent(f"{merge_sha[:12]} of {repo}: no commit before it, so no reviewed pipeline file")
            before = parents[0]
    deps.state.set_release_pipeline_commit(repo, merge_sha, before)
    log.info("pipeline.release_commit", repo=repo, pr=pr, merge=merge_sha, decided_by=before)
    return before


def note_release(deps: Deps, repo: str, sha: str) -> None:
    """A merge commit of `repo` starts a release: its models are found by name and registry from now on (registry
    events, polling, Slack), read from the file at that commit. `deps` is already the file's."""
    if (deps.central or deps.settings).own_pipeline(repo) is None or deps.settings.repo(repo) is None:
        return
    for model in deps.settings.models_for_repo(repo):
        names = [s.registry_name for s in deps.settings.stages(model)]
        deps.state.note_released_model(model, repo, sha, names)


def released(deps: Deps, *, model: str = "", registry_name: str = "", repo: str = "") -> Deps:
    """`deps` with the pipeline that last released `model` (or the model writing `registry_name`, or the newest
    release of `repo`), when a repository's own file holds it; else `deps` as it is (the central config's)."""
    if model and model in deps.settings.models:
        return deps
    if registry_name and stages.owner_of(deps.settings, registry_name):
        return deps
    known = deps.state.released_models()
    for name, entry in known.items():
        if (
            (model and name == model)
            or (registry_name and registry_name in entry.get("registries", []))
            or (repo and entry.get("repo", "").lower() == repo.lower() and not model and not registry_name)
        ):
            return at(deps, entry["repo"], entry["sha"])
    return deps


def released_registries(deps: Deps, trigger: str = "merge") -> list[str]:
    """The registry names of every repository-owned model's `trigger` stage, as last released (for polling)."""
    out = []
    for name, entry in deps.state.released_models().items():
        try:
            effective = at(deps, entry["repo"], entry["sha"])
        except Permanent as exc:
            log.warning("pipeline.unreadable", model=name, reason=exc.message)
            continue
        if name in effective.settings.models:
            out.append(stages.stage(effective.settings, name, trigger).registry_name)
    return out
