"""Judge a scored model version: metrics from its predictions and the labels; print the verdict.

    python steps/judge.py --predictions PATH [--dataset toy|full|tiny] [--min-accuracy 0.6] [--min-roc-auc 0.6]

Reads the predictions steps/score.py wrote to PATH, makes the labels itself (the validation set of
--dataset's size, from the fixed seed no training run uses) and computes the candidate's metrics and
checks (loads, signature, predicts as the scorer saw them; shape, no_nan, binary_labels, min_accuracy,
min_roc_auc) and the champion's metrics on the same rows. It loads no model: no model's code runs in
this process. Logs a new MLflow run tagged validation_of=<name>/<version>. The last line is the
verdict, one JSON object: metrics, champion_metrics (or null), champion, champion_version, data,
passed, checks... Exit code 0 when every check passes, 1 when one fails.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import EXPERIMENT_NAME, VALIDATION_DATASET
from churn_model.data import DATASET_SIZES
from churn_model.reporting import emit, run_step, validation_summary


def _dataset(value: str) -> str:
    return value.strip() or VALIDATION_DATASET


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="judge.py", description=__doc__.splitlines()[0])
    parser.add_argument("--predictions", required=True, metavar="PATH", help="written by steps/score.py")
    parser.add_argument("--dataset", type=_dataset, choices=list(DATASET_SIZES), default=VALIDATION_DATASET)
    parser.add_argument("--min-accuracy", type=float, default=0.6)
    parser.add_argument("--min-roc-auc", type=float, default=0.6)
    parser.add_argument("--experiment", default=EXPERIMENT_NAME)
    parser.add_argument("--workdir", default=None, help="where the validation plot is written")
    args = parser.parse_args(argv)

    def body():
        from churn_model.pipeline import judge, read_predictions

        result = judge(
            read_predictions(args.predictions),
            dataset=args.dataset,
            min_accuracy=args.min_accuracy,
            min_roc_auc=args.min_roc_auc,
            experiment=args.experiment,
            workdir=args.workdir,
        )
        emit(validation_summary(result), result)
        return 0 if result["passed"] else 1

    return run_step("judge.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
