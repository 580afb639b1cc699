"""Register the trained model as a new version, with lineage tags.

    python steps/register.py [--workdir DIR] [--model-name NAME]
                             --repo R --branch B --commit SHA --pr N --triggered-by LOGIN

NAME is an MLflow name (default churn-model) or, with MLFLOW_REGISTRY_URI=databricks-uc, a
three-level Unity Catalog name (dev.ml.churn); the model is logged with the signature Unity
Catalog requires.

Version tags: repo, branch, commit, pr, job_run_id (from $DATABRICKS_JOB_RUN_ID),
triggered_by, mlflow_run_id; the same lineage is set as tags on the MLflow run.
Empty or absent values are not set.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import MODEL_NAME
from churn_model.lineage import add_lineage_arguments, default_workdir, lineage_from
from churn_model.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="register.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        default=None,
        help="work directory written by train.py (default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>)",
    )
    parser.add_argument("--model-name", default=MODEL_NAME)
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    workdir = args.workdir or str(default_workdir())

    def body():
        from churn_model.pipeline import register

        result = register(workdir, args.model_name, lineage=lineage_from(args))
        tags = ", ".join(f"{k}={v}" for k, v in result["tags"].items())
        emit(
            [
                f"registered {result['model_name']} version {result['version']} from run {result['mlflow_run_id']}",
                f"version tags: {tags}",
            ],
            result,
        )

    return run_step("register.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
