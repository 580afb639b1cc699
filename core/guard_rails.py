"""`[repos.guard_rails]`: the platform's limits on a repository's own pipeline file (core/pipeline.py checks
a file against them, key by key)."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict, Field

from core.compute import ComputeKind


class GuardRails(BaseModel):
    """`[repos.guard_rails]`: what a repository's own pipeline file may ask for (the platform's limits, like
    Atlantis' server-side repos.yaml over a repository's atlantis.yaml). An empty list allows anything of its kind,
    except `registry_names`, which a repository with a pipeline file must name: no repository writes another's."""

    model_config = ConfigDict(extra="forbid", frozen=True)

    environments: list[str] = []  # environments its workflows and stages may use (empty: every [environments] key)
    compute: list[ComputeKind] = ["serverless", "job_clusters"]  # an all-purpose cluster only when listed
    node_types: list[str] = []  # node_type_id and driver_node_type_id of its job clusters
    max_workers: int | None = Field(None, ge=0)  # num_workers, or autoscale.max_workers, per job cluster
    datasets: list[str] = []
    params: list[str] = []  # the `params_allowed` a workflow may take
    max_timeout_seconds: int | None = Field(None, gt=0)  # per workflow and task; 0 (no limit) is then refused
    registry_names: list[str] = []  # globs (`prod.fraud.*`) every stage's registry name must match
    min_approvals: int = Field(1, ge=1)  # the least required_approvals of an approval stage
    approvers: list[str] = []  # the approvers a file may name (logins or @org/team); empty: anyone
