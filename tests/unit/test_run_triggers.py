"""A run's trigger (its Jobs API idempotency token's seed) comes from the signed body, never the delivery id
(issue #18): the same push, PR head or version delivered again under another id starts nothing twice."""

from workers.jobs.spec import idempotency_token
from workers.pr.runs import run_trigger


def test_a_push_s_run_is_its_commit_and_a_pr_s_its_number_and_head():
    assert run_trigger("b" * 40, None) == "push:" + "b" * 40
    assert run_trigger("b" * 40, 7) == "pr:7:" + "b" * 40
    assert run_trigger("b" * 40, 7) != run_trigger("b" * 40, 8) != run_trigger("c" * 40, 8)


def test_the_same_push_delivered_under_two_ids_gets_one_run_token():
    tokens = {idempotency_token(run_trigger("b" * 40, None), "acme/churn-model", "feature/x", "train")}
    tokens.add(idempotency_token(run_trigger("b" * 40, None), "acme/churn-model", "feature/x", "train"))
    assert len(tokens) == 1
