"""What the repository sees of a release: the release comment on the merged PR, and a GitHub Deployment
per environment with its statuses (the repository's Environments page shows what runs where).

Without GitHub credentials a release still runs; only the repository is not told.
"""

from __future__ import annotations

from workers import feedback
from workers import release_texts as rt
from workers.context import Deps
from workers.gateways.forge import DEPLOYMENT_KEY


def show(deps: Deps, release: dict | None) -> None:
    """Save the release and render its comment on the merged PR (edited in place)."""
    if release is None:
        return
    deps.state.save_release(release)
    if deps.forge is None:
        return
    request = (
        deps.state.approval(release["staging"]["registry"], release["staging"]["version"])
        if (release["staging"].get("version"))
        else None
    )
    body = rt.release_comment(release, request, deps.settings.mlflow.champion_alias)
    feedback.sticky_comment(deps.forge, deps.state, release["repo"], release["pr"], "release", release["model"], body)


def for_request(deps: Deps, request: dict) -> dict | None:
    """The release a version belongs to (None for a version without proven lineage: it has no merged PR)."""
    if not request.get("proven") or not request.get("pr"):
        return None
    return deps.state.release(request["model"], request["repo"], request["pr"])


def deployment(
    deps: Deps, release: dict, environment: str, version: str, state: str, description: str, log_url: str = ""
) -> None:
    """The GitHub Deployment of `release` to `environment` for `version`: created once, then a status.
    A success in prod marks the deployment it replaced inactive (GitHub leaves production ones alone)."""
    if deps.forge is None:
        return
    key = f"{release['model']}:{environment}:{version or '#' + str(release['pr'])}"
    ref = release.get("sha") or deps.settings.repo(release["repo"]).default_branch  # type: ignore[union-attr]
    deployment_id = deps.forge.create_deployment(
        release["repo"],
        ref,
        environment,
        f"{release['model']} from #{release['pr']}" + (f" v{version}" if version else ""),
        {DEPLOYMENT_KEY: key},
    )
    deps.forge.set_deployment_status(release["repo"], deployment_id, state, description, log_url)
    if state == "success":
        live = deps.state.live_deployment(release["repo"], environment)
        if live and live != deployment_id:
            replaced = f"replaced by {release['model']} v{version}"
            deps.forge.set_deployment_status(release["repo"], live, "inactive", replaced)
        deps.state.set_live_deployment(release["repo"], environment, deployment_id)
