"""Judge a scored version: metrics from the scorer's predictions and labels it makes itself; print the verdict.

    python steps/judge.py --model-name NAME --version V --predictions PATH [--dataset toy|full|tiny]
                          [--min-roc-auc X] [--min-average-precision X]

Loads no model, so no model's code runs in this process. The labels are the model's validation set (its own
seed, of --dataset's size); the predictions must say they are of NAME version V. Checks: loads, signature,
predicts (as the scorer saw them), same_model, shape, no_nan, binary_labels, min_roc_auc, min_average_precision
(defaults: the model's own floors). Logs a run tagged validation_of=NAME/V. The last line is the verdict: metrics,
champion_metrics (or null), champion, champion_version, delta, data, passed, checks, errors. Exit 0 when it passed.
"""

import argparse

import _bootstrap  # noqa: F401
from fraud_detection import EXPERIMENT_NAME, VALIDATION_DATASET
from fraud_detection.cli import add_model_arguments, validation_dataset
from fraud_detection.models import ModelError, select
from fraud_detection.reporting import emit, run_step, validation_summary


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="judge.py", description=__doc__.splitlines()[0])
    add_model_arguments(parser, name_required=True)
    parser.add_argument("--version", required=True, help="the version the scorer was asked for")
    parser.add_argument("--predictions", required=True, metavar="PATH", help="written by steps/score.py")
    parser.add_argument("--dataset", type=validation_dataset, default=VALIDATION_DATASET, help="empty = toy")
    parser.add_argument("--min-roc-auc", type=float, default=None)
    parser.add_argument("--min-average-precision", type=float, default=None)
    parser.add_argument("--experiment", default=EXPERIMENT_NAME)
    args = parser.parse_args(argv)
    try:
        spec = select(args.model_name, args.model)
    except ModelError as exc:
        parser.error(str(exc))
    asked = {"roc_auc": args.min_roc_auc, "average_precision": args.min_average_precision}
    floors = {**spec.floors, **{k: v for k, v in asked.items() if v is not None}}

    def body():
        from fraud_detection.validation import judge, read_predictions

        result = judge(spec, args.model_name, args.version, read_predictions(args.predictions),
                       dataset=args.dataset, floors=floors, experiment=args.experiment)  # fmt: skip
        emit([*validation_summary(result), f"validation run {result['validation_run_id']}"], result)
        return 0 if result["passed"] else 1

    return run_step("judge.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
