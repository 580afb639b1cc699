"""`churn-train`: prepare + train + evaluate (+ optionally register) in one process.

The python_wheel_task entry point of the project:

    churn-train --dataset toy [--workdir DIR] [--param KEY=VALUE ...]
                [--register --model-name churn-model] [--repo R --branch B --commit SHA ...]

Prints a short summary and ends with one JSON line:
    {"mlflow_run_id": ..., "model_uri": ..., "metrics": {...validation set...},
     "holdout_metrics": {...holdout split...},
     "train_metrics": {...}, "params": {...}, "dataset": ..., "registered": {...}|null}
"""

from __future__ import annotations

import argparse

from churn_model import EXPERIMENT_NAME, MODEL_NAME
from churn_model.data import DATASET_SIZES, DEFAULT_SEED
from churn_model.lineage import add_lineage_arguments, default_workdir, lineage_from
from churn_model.model import DEFAULT_PARAMS, ParamError, parse_params, split_params
from churn_model.reporting import emit, fmt_metrics, run_step


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="churn-train", description=__doc__.splitlines()[0])
    parser.add_argument("--dataset", choices=list(DATASET_SIZES), default="toy")
    parser.add_argument("--workdir", default=None, help="default .mlops-run/<DATABRICKS_JOB_RUN_ID or local>")
    parser.add_argument("--seed", type=int, default=DEFAULT_SEED)
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
    parser.add_argument("--register", action="store_true", help="also register the model")
    parser.add_argument("--model-name", default=MODEL_NAME)
    add_lineage_arguments(parser)
    return parser


def main(argv: list[str] | None = None) -> int:
    parser = build_parser()
    args = parser.parse_args(argv)
    try:
        params = parse_params([*split_params(args.params), *args.param])
    except ParamError as exc:
        parser.error(str(exc))
    workdir = args.workdir or str(default_workdir())

    def body():
        from churn_model import pipeline

        lineage = lineage_from(args)
        prepared = pipeline.prepare(args.dataset, workdir, seed=args.seed)
        trained = pipeline.train(workdir, params, lineage=lineage, experiment=args.experiment)
        evaluated = pipeline.evaluate(workdir, model=trained["_model"])
        registered = pipeline.register(workdir, args.model_name, lineage=lineage) if args.register else None
        lines = [
            f"prepared {prepared['dataset']!r}: {prepared['train_rows']} train / "
            f"{prepared['holdout_rows']} holdout rows",
            f"trained: {fmt_metrics(trained['metrics'])}",
            f"validation set: {fmt_metrics(evaluated['metrics'])}",
            f"holdout split: {fmt_metrics(evaluated['holdout_metrics'])}",
            f"MLflow run {trained['mlflow_run_id']}, model {trained['model_uri']}",
        ]
        if registered:
            lines.append(f"registered {registered['model_name']} version {registered['version']}")
        emit(
            lines,
            {
                "dataset": prepared["dataset"],
                "mlflow_run_id": trained["mlflow_run_id"],
                "model_uri": trained["model_uri"],
                "params": trained["params"],
                "train_metrics": trained["metrics"],
                "metrics": evaluated["metrics"],
                "holdout_metrics": evaluated["holdout_metrics"],
                "registered": registered,
            },
        )

    return run_step("churn-train", body)


if __name__ == "__main__":
    raise SystemExit(main())
