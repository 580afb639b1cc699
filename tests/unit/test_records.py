"""The records the workers keep in Redis (workers/core/records.py): what an older bot saved is read back, written
back with the same keys, and its release history (lines of text) still renders — once."""

import json
from dataclasses import replace

from workers.core.records import ApprovalRequest, Lineage, Release, RollbackPlan, Verdict
from workers.core.run_records import CachedJob, RunRecord, RunResult
from workers.release import texts as rt

REPO = "acme/churn-model"

# as the bot before typed records saved them (its keys, in its order)
RELEASE = {
    "model": "churn-model",
    "repo": "acme/churn-model",
    "pr": 7,
    "sha": "m" * 40,
    "author": "alice",
    "merged_by": "bob",
    "dev": {"name": "dev", "registry": "churn-model-dev"},
    "staging": {
        "name": "staging",
        "registry": "churn-model-staging",
        "dataset": "full",
        "train_run": 1001,
        "train_url": "http://ws/runs/1001",
        "train_state": "SUCCESS",
        "version": "2",
    },
    "prod": {"name": "prod", "registry": "churn-model", "version": "2", "deploy_state": "PENDING"},
    "history": [
        {"at": 0.0, "text": "#7 merged by @bob at `mmmmmmm`"},
        {"at": 60.0, "text": "staging training started on `full` data"},
        {"at": 120.0, "text": "staging training registered `churn-model-staging` v2"},
    ],
}
REQUEST = {
    "model": "churn-model",
    "name": "churn-model-staging",
    "version": "2",
    "status": "approved",
    "validation": "passed",
    "requested_at": 1795660000.5,
    "repo": "acme/churn-model",
    "proven": True,
    "claimed": {"triggered_by": "carol"},
    "mlflow_run_id": "r2",
    "approvals": [{"by": "bob", "at": 1795660100.0, "source": "github", "trigger": "d-1:0"}],
    "branch": "main",
    "commit": "m" * 40,
    "pr": 7,
    "pr_author": "alice",
    "merged_by": "bob",
    "job_run_id": 1001,
    "needed": 1,
    "validation_run": 1002,
    "validation_url": "http://ws/runs/1002",
    "followed": True,
    "summary": "passed: accuracy=0.9000",
    "metrics": {"accuracy": 0.9},
    "data": "validation set",
    "gates": [{"gate": "accuracy >= champion", "passed": True, "detail": "0.9000 >= 0.8500"}],
    "champion": {"model": "churn-model", "version": "1", "metrics": {"accuracy": 0.85}},
    "slack_channel": "C0APPROVALS",
    "slack_ts": "1.0001",
    "decided_at": 1795660100.0,
    "promotion": "done",
    "replaced": "1",
    "prod_version": "2",
}
RUN = {
    "run_id": 1003,
    "job_id": 12,
    "job": "mlops-bot/acme/churn-model/main/deploy@prod",
    "environment": "prod",
    "repo": "acme/churn-model",
    "branch": "main",
    "sha": "m" * 40,
    "workflow": "deploy",
    "pr": None,
    "requested_by": "bob",
    "parameters": {"sha": "m" * 40, "model": "churn-model", "version": "2"},
    "token": "t-1003",
    "state": "TERMINATED",
    "started_at": 1795660200.0,
    "release_model": "churn-model",
    "stage": "prod",
    "purpose": "deploy",
    "name": "churn-model",
    "version": "2",
    "deploy_to": "prod",
    "repo_of_release": "acme/churn-model",
    "release_of": ["churn-model", "acme/churn-model", 7],
    "deployment_id": 55,
    "result": {  # every key, always, in the order workers/jobs/results.py `run_result` wrote them
        "run_id": 1003,
        "job_id": 12,
        "life_cycle": "TERMINATED",
        "result": "SUCCESS",
        "message": "",
        "run_page_url": "http://ws/runs/1003",
        "duration_s": 95.2,
        "used_commit": "m" * 40,
        "tasks": [{"key": "deploy", "run_id": 1004, "result": "SUCCESS", "duration_s": 90.1, "output": ""}],
    },
    "finished_at": 1795660300.0,
}


def test_records_saved_by_the_older_bot_are_read_and_written_back_with_the_same_keys():
    for kind, saved in ((Release, RELEASE), (ApprovalRequest, REQUEST), (RunRecord, RUN)):
        record = kind.from_json(json.loads(json.dumps(saved)))
        assert record.to_json() == saved, kind.__name__


def test_the_fields_are_typed_values():
    request = ApprovalRequest.from_json(REQUEST)
    assert (request.ref, request.approvals[0].by, request.gates[0].passed) == ("churn-model-staging@2", "bob", True)
    assert request.champion is not None and request.champion.metrics == {"accuracy": 0.85}
    run = RunRecord.from_json(RUN)
    assert (run.context.purpose, run.context.release_of, run.deployment_id) == ("deploy", ("churn-model", REPO, 7), 55)
    release = Release.from_json(RELEASE)
    assert (release.staging.train_run, release.prod.deploy_state, release.history[0].kind) == (1001, "PENDING", "text")


def test_a_run_result_is_written_back_byte_for_byte_and_its_tasks_are_typed():
    saved = RUN["result"]
    result = RunRecord.from_json(RUN).result
    assert result is not None and json.dumps(result.to_json()) == json.dumps(saved)
    assert (result.tasks[0].key, result.tasks[0].duration_s, result.duration_s) == ("deploy", 90.1, 95.2)


def test_a_run_result_missing_keys_reads_them_as_empty():
    result = RunResult.from_json({"run_id": 1, "job_id": 2, "life_cycle": "TERMINATED", "result": "FAILED"})
    assert (result.run_page_url, result.message, result.duration_s, result.tasks) == ("", "", 0.0, ())


def test_a_key_the_older_bot_never_wrote_reads_as_its_default_and_is_not_written():
    saved = {k: v for k, v in REQUEST.items() if k not in ("replaced", "slack_ts", "promotion", "decided_at")}
    request = ApprovalRequest.from_json(saved)
    assert (request.replaced, request.slack_ts, request.promotion, request.decided_at) == (None, "", "", None)
    assert request.to_json() == saved


def test_a_kept_plan_keeps_its_keys():
    assert RollbackPlan("2", "1").to_json() == {"from": "2", "to": "1"}
    assert RollbackPlan.from_json({"from": "2", "to": "1"}) == RollbackPlan(current="2", target="1")
    assert Verdict.from_json({"ok": True, "message": "approved"}) == Verdict(True, "approved")
    lineage = {"repo": REPO, "branch": "main", "commit": "c", "pr": 7, "pr_author": "alice", "merged_by": "bob"}
    lineage |= {"registry": "churn-model-staging", "started_at": 1.0, "finished_at": 2.0}
    assert Lineage.from_json(lineage).to_json() == lineage
    job = {"job_id": 12, "fingerprint": "f", "updated_at": 3.0}
    assert CachedJob.from_json(job).to_json() == job


def test_a_history_of_text_lines_still_renders_line_by_line():
    comment = rt.release_comment(Release.from_json(RELEASE), None, "champion")
    assert comment.endswith(
        "<details><summary>History</summary>\n\n"
        "- 00:00:00 #7 merged by @bob at `mmmmmmm`\n"
        "- 00:01:00 staging training started on `full` data\n"
        "- 00:02:00 staging training registered `churn-model-staging` v2\n\n"
        "</details>"
    )


def test_a_step_an_older_bot_wrote_as_text_is_not_written_again_as_an_event():
    release = Release.from_json(RELEASE)
    again = rt.with_event(release, rt.event("registered", "2", name="churn-model-staging", version="2"))
    assert again is release
    new = rt.with_event(release, rt.event("validation-started", "2", version="2"))
    assert [rt.history_text(e) for e in new.history][-1] == "validation of v2 started against the prod champion"
    assert len(release.history) == 3  # pure: the release it was given is unchanged


def test_a_step_is_kept_once_by_kind_and_key_whatever_its_wording():
    release = Release.from_json({**RELEASE, "history": []})
    failed = rt.with_event(release, rt.event("training-failed", 1001, result="FAILED"))
    assert rt.with_event(failed, rt.event("training-failed", 1001, result="TIMEDOUT")) is failed
    assert len(rt.with_event(failed, rt.event("training-failed", 1004, result="FAILED")).history) == 2
    saved = Release.from_json(json.loads(json.dumps(failed.to_json())))
    assert saved == failed and saved.to_json()["history"][0]["kind"] == "training-failed"


def test_the_history_keeps_the_newest_steps():
    release = Release.from_json({**RELEASE, "history": []})
    for n in range(rt.HISTORY_LIMIT + 5):
        release = rt.with_event(release, rt.event("deployed", n, name="m", version="1", env="e", result="OK", url=""))
    assert len(release.history) == rt.HISTORY_LIMIT and release.history[0].key == "5"


def test_every_kind_of_step_is_worded_as_the_older_bot_worded_it():
    steps = [
        (rt.event("merged", 7, pr=7, merged_by="bob", sha="m" * 40), "#7 merged by @bob at `mmmmmmm`"),
        (rt.event("training-started", 1, dataset=""), "staging training started on `default` data"),
        (rt.event("training-failed", 1, result="FAILED"), "❌ staging training FAILED"),
        (rt.event("validated", "2", status="cancelled", summary="s"), "🚫 validation cancelled: s"),
        (
            rt.event("promoted", "2", by="bob,carol", registry="p", alias="champion", version="2", was="1"),
            "✅ approved by @bob, @carol: `p@champion` → v2 (was v1)",
        ),
        (
            rt.event("deployed", "prod:3", name="p", version="2", env="prod", result="SUCCESS", url="u"),
            "✅ deploy of `p` v2 to prod: [SUCCESS](u)",
        ),
        (
            rt.event(
                "rolled-back",
                "w",
                actor="mo",
                registry="p",
                alias="champion",
                to="1",
                run_id=3,
                url="u",
                **{"from": "2"},
            ),
            "@mo ↩️ rolled `p@champion` back from v2 to v1; deploy is running ([run 3](u)).",
        ),
    ]
    assert [rt.history_text(step) for step, _ in steps] == [line for _, line in steps]


def test_an_update_is_a_new_record():
    request = ApprovalRequest.from_json(REQUEST)
    assert replace(request, status="rejected").status == "rejected" and request.status == "approved"
