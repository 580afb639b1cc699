"""Train one of the project's models on the tables the features notebook wrote, and log it to MLflow.

    python steps/train.py --model-name NAME [--model card_fraud|ato_risk] [--workdir DIR]
                          [--params K=V,K=V] [--param K=V ...] [--repo R --branch B --commit SHA --pr N ...]

NAME's last part names the model (dev.fraud.card_fraud trains card_fraud). Parameters: n_estimators, max_depth,
learning_rate, min_samples_leaf, random_state (each model has its own defaults); an unknown key is an error.
Logs to experiment /fraud-detection: params, the validation-set metrics (roc_auc, average_precision, precision,
recall, f1, accuracy), holdout_* and train_*, and the model with its signature. Writes DIR/<model>/train.json.
"""

import argparse

import _bootstrap  # noqa: F401
from fraud_detection import EXPERIMENT_NAME
from fraud_detection.cli import add_model_arguments, add_workdir_argument, workdir_of
from fraud_detection.lineage import add_lineage_arguments, lineage_from
from fraud_detection.models import ModelError, ParamError, parse_params, select, split_params
from fraud_detection.reporting import emit, fmt_metrics, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="train.py", description=__doc__.splitlines()[0])
    add_model_arguments(parser)
    add_workdir_argument(parser)
    parser.add_argument("--param", action="append", default=[], metavar="KEY=VALUE", help="repeatable")
    parser.add_argument("--params", default="", metavar="K=V,K=V", help="one comma-separated list (may be empty)")
    parser.add_argument("--experiment", default=EXPERIMENT_NAME)
    add_lineage_arguments(parser)
    args = parser.parse_args(argv)
    try:  # before anything slow is imported
        spec = select(args.model_name, args.model)
        params = parse_params(spec, [*split_params(args.params), *args.param])
    except (ModelError, ParamError) as exc:
        parser.error(str(exc))

    def body():
        from fraud_detection.pipeline import train

        result = train(spec, workdir_of(args), params, lineage=lineage_from(args), experiment=args.experiment)
        emit(
            [
                f"trained {spec.name} ({spec.family}) on {result['dataset']!r} with "
                + ", ".join(f"{k}={v}" for k, v in params.items()),
                f"validation set: {fmt_metrics(result['metrics'])}",
                f"holdout split: {fmt_metrics(result['holdout_metrics'])}",
                f"MLflow run {result['mlflow_run_id']}, model {result['model_uri']}",
            ],
            result,
        )

    return run_step("train.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
