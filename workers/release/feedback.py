"""What the repository sees of a release: the release comment on the merged PR, and a GitHub Deployment
per environment with its statuses (the repository's Environments page shows what runs where).

Without GitHub credentials a release still runs; only the repository is not told.
"""

from __future__ import annotations

import time

from core.config import Settings
from workers.core import sticky
from workers.core.context import Deps
from workers.core.records import ApprovalRequest, Release, SlackAnswer, SlackPost, SlackTried
from workers.gateways.forge import DEPLOYMENT_KEY
from workers.release import texts


def publish(deps: Deps, release: Release | None) -> None:
    """Save the release and render its comment on the merged PR (edited in place)."""
    if release is None:
        return
    deps.state.save_release(release)
    if deps.forge is None:
        return
    staging = release.staging
    request = deps.state.approval(staging.registry, staging.version) if staging.version else None
    body = texts.release_comment(release, request, deps.settings.mlflow.champion_alias)
    sticky.upsert(deps.forge, deps.state, release.repo, release.pr, "release", release.model, body)


def for_request(deps: Deps, request: ApprovalRequest) -> Release | None:
    """The release a version belongs to (None for a version without proven lineage: it has no merged PR)."""
    if not request.proven or not request.pr:
        return None
    return deps.state.release(request.model, request.repo, request.pr)


def github_environment(settings: Settings, repo: str, model: str, stage: str) -> str:
    """The GitHub environment a model's stage deploys to: the stage's name (`prod`), or `<stage>/<model>`
    (`prod/ato_risk`) when the repository has several models. GitHub keeps one environment per name and repository,
    and a success there marks the environment's earlier deployment inactive: two models in one `prod` would
    inactivate each other."""
    return f"{stage}/{model}" if len(settings.models_for_repo(repo)) > 1 else stage


def deployment(
    deps: Deps, release: Release, environment: str, version: str, state: str, description: str, log_url: str = ""
) -> int | None:
    """The GitHub Deployment of `release` to `environment` (for `version`, or for the release as a whole):
    created once, then a status. Returns its id (None without GitHub)."""
    key = f"{release.model}:{environment}:{version or '#' + str(release.pr)}"
    what = f"{release.model} from #{release.pr}" + (f" v{version}" if version else "")
    environment = github_environment(deps.settings, release.repo, release.model, environment)
    deployment_id = open_deployment(deps, release.repo, release.sha, environment, key, what)
    if deployment_id is not None:
        deployment_status(deps, release.repo, environment, deployment_id, state, description, log_url)
    return deployment_id


def open_deployment(deps: Deps, repo: str, sha: str, environment: str, key: str, description: str) -> int | None:
    """A GitHub Deployment of commit `sha` (the default branch when the bot recorded none), found again by `key`."""
    if deps.forge is None:
        return None
    cfg = deps.settings.repo(repo)
    ref = sha or (cfg.default_branch if cfg else "main")
    return deps.forge.create_deployment(repo, ref, environment, description, {DEPLOYMENT_KEY: key})


def deployment_status(
    deps: Deps, repo: str, environment: str, deployment_id: int, state: str, description: str, log_url: str = ""
) -> None:
    """A status on the deployment; a success marks the one it replaced `inactive` (GitHub leaves prod's alone)."""
    if deps.forge is None:
        return
    deps.forge.set_deployment_status(repo, deployment_id, state, description, log_url)
    if state == "success":
        live = deps.state.live_deployment(repo, environment)
        if live and live != deployment_id:
            deps.forge.set_deployment_status(repo, live, "inactive", f"replaced: {description}")
        deps.state.set_live_deployment(repo, environment, deployment_id)


CLOCK_MARGIN = 60.0  # seconds: the bot's clock and the ts Slack gives a message may disagree


def slack_post(deps: Deps, work: str, text: str, thread_ts: str = "", channel: str = "") -> None:
    """Post `text` to Slack once for `work` (what it reports, e.g. a deploy run): a task run again after a crash
    posts nothing twice — chat.postMessage takes no idempotency key, so the bot keeps what it posted, and a post
    whose answer was lost is found again by the key its metadata carries."""
    if deps.slack is None or deps.state.plan(f"slack:{work}", SlackPost) is not None:
        return
    found = landed(deps, work, channel, thread_ts)
    posted, ts = found or deps.slack.post(text, thread_ts=thread_ts, channel=channel, key=work)
    deps.state.keep_plan(f"slack:{work}", SlackPost(posted, ts))


def landed(deps: Deps, work: str, channel: str = "", thread_ts: str = "") -> tuple[str, str] | None:
    """The message an earlier run posted for `work` (channel, ts), when it reached Slack and only its answer was
    lost. The first run notes when it tried; a run again looks in the channel (or thread) from then on only."""
    if deps.slack is None:
        return None
    tried = deps.state.plan(f"slack-tried:{work}", SlackTried)
    if tried is None:
        deps.state.keep_plan(f"slack-tried:{work}", SlackTried(time.time()))
        return None
    return deps.slack.find_post(work, channel=channel, thread_ts=thread_ts, oldest=tried.at - CLOCK_MARGIN)


def slack_respond(deps: Deps, response_url: str, text: str, in_channel: bool = False, channel: str = "") -> None:
    """Answer a Slack command or button once: a task delivered again after it finished (the worker died before
    the ack) does not answer twice — a response URL takes up to five posts, no idempotency key. An answer to the
    channel (`channel`: where the command or button was) whose own answer was lost is found again there; an
    ephemeral one is the user's alone, and nothing reads it back."""
    work = f"slack-answer:{response_url}"
    if deps.slack is None or deps.state.plan(work, SlackAnswer) is not None:
        return
    if not (in_channel and channel and landed(deps, work, channel)):
        deps.slack.respond(response_url, text, in_channel=in_channel, key=work if in_channel else "")
    deps.state.keep_plan(work, SlackAnswer(text))
