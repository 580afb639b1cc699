"""Evaluate the trained model and log the metrics to the training run.

    python steps/evaluate.py [--workdir DIR]

Logs to the run recorded in DIR/train.json: accuracy, f1, roc_auc, precision, recall on the
validation set (fresh toy-size data from a fixed seed, the same rows validate.py scores, so
a version's validation metrics equal its run's), holdout_<metric> on the holdout split of
the training data, and plots/confusion_matrix.png, plots/roc_curve.png.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model.lineage import add_lineage_arguments, default_workdir, lineage_from
from churn_model.reporting import emit, fmt_metrics, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="evaluate.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        default=None,
        help="work directory written by train.py (default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>)",
    )
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    workdir = args.workdir or str(default_workdir())

    def body():
        from churn_model.pipeline import evaluate

        result = evaluate(workdir, lineage=lineage_from(args))
        emit(
            [
                f"validation set ({result['validation_rows']} rows): {fmt_metrics(result['metrics'])}",
                f"holdout split ({result['holdout_rows']} rows): {fmt_metrics(result['holdout_metrics'])}",
                f"logged to MLflow run {result['mlflow_run_id']}",
            ],
            result,
        )

    return run_step("evaluate.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
