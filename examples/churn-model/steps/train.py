"""Train the churn model and log it to MLflow (experiment /churn-model).

    python steps/train.py [--workdir DIR] [--param KEY=VALUE ...] [--params K=V,K=V] [--experiment NAME]
                          [--repo R --branch B --commit SHA --pr N --triggered-by LOGIN]

Parameters: n_estimators, max_depth, learning_rate, subsample, min_samples_leaf,
random_state; an unknown key is an error. Reads DIR/data/train.csv (from prepare.py),
writes DIR/train.json with the MLflow run id that evaluate.py and register.py use.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import EXPERIMENT_NAME
from churn_model.lineage import add_lineage_arguments, default_workdir, lineage_from
from churn_model.model import DEFAULT_PARAMS, ParamError, parse_params, split_params
from churn_model.reporting import emit, fmt_metrics, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    parser.add_argument(
        "--workdir",
        default=None,
        help="work directory written by prepare.py (default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>)",
    )
    parser.add_argument(
        "--param",
        action="append",
        default=[],
        metavar="KEY=VALUE",
        help=f"hyper-parameter, repeatable; known: {', '.join(sorted(DEFAULT_PARAMS))}",
    )
    parser.add_argument(
        "--params", default="", metavar="K=V,K=V", help="the same as one comma-separated list (may be empty)"
    )
    parser.add_argument("--experiment", default=EXPERIMENT_NAME)
    parser.add_argument("--run-name", default=None)
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    # Check the parameters before anything slow is imported.
    try:
        params = parse_params([*split_params(args.params), *args.param])
    except ParamError as exc:
        parser.error(str(exc))
    workdir = args.workdir or str(default_workdir())

    def body():
        from churn_model.pipeline import train

        result = train(workdir, params, lineage=lineage_from(args), experiment=args.experiment, run_name=args.run_name)
        emit(
            [
                f"trained gradient boosting on {result['dataset']!r} with "
                + ", ".join(f"{k}={v}" for k, v in result["params"].items()),
                f"training metrics: {fmt_metrics(result['metrics'])}",
                f"MLflow run {result['mlflow_run_id']} in experiment {result['experiment']}, "
                f"model {result['model_uri']}",
            ],
            result,
        )

    return run_step("train.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
