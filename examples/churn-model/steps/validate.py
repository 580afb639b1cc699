"""Validate a registered model version, next to the current champion, on freshly generated data (one process).

    python steps/validate.py --model-name NAME --version V [--champion URI] [--dataset toy|full|tiny]
                             [--min-accuracy 0.6] [--min-roc-auc 0.6]

Scores the candidate models:/NAME/V and, when --champion names one that exists (for example
models:/prod.ml.churn@champion), the champion, on the same rows: the validation set of
--dataset's size (default toy) generated from a fixed seed no training run uses. An empty
--champion, or one whose model or alias does not exist yet (the first release), means "no
champion yet": only the candidate is scored. Checks (candidate only): loads, signature,
predicts, shape, no_nan, binary_labels, min_accuracy, min_roc_auc. Logs a new MLflow run
tagged validation_of=<name>/<version> with both sets of metrics. The last line is one JSON
object: metrics, champion_metrics (or null), champion, champion_version, data, passed, checks...
Exit code 0 when every check passes, 1 when one fails.

For a person at a terminal: score and judge in one process. The bot's validate workflow runs them as two
tasks, steps/score.py (loads the models, writes predictions) then steps/judge.py (loads no model, prints
the verdict), so that no model's code runs in the process whose last line is the verdict.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import EXPERIMENT_NAME, MODEL_NAME, VALIDATION_DATASET
from churn_model.data import DATASET_SIZES
from churn_model.reporting import emit, run_step, validation_summary


def _dataset(value: str) -> str:
    # The bot passes {dataset}, which may be empty: empty means the default size.
    return value.strip() or VALIDATION_DATASET


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="validate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--version", required=True, help="version number or alias (e.g. champion)")
    parser.add_argument(
        "--champion",
        default="",
        metavar="URI",
        help="model URI of the current champion, e.g. models:/prod.ml.churn@champion (may be empty)",
    )
    parser.add_argument(
        "--dataset",
        type=_dataset,
        choices=list(DATASET_SIZES),
        default=VALIDATION_DATASET,
        help=f"size of the validation set (default {VALIDATION_DATASET}; empty = default)",
    )
    parser.add_argument("--min-accuracy", type=float, default=0.6)
    parser.add_argument("--min-roc-auc", type=float, default=0.6)
    parser.add_argument("--experiment", default=EXPERIMENT_NAME)
    parser.add_argument("--workdir", default=None, help="where the validation plot is written")
    args = parser.parse_args(argv)

    def body():
        from churn_model.pipeline import validate

        result = validate(
            args.model_name,
            args.version,
            champion=args.champion,
            dataset=args.dataset,
            min_accuracy=args.min_accuracy,
            min_roc_auc=args.min_roc_auc,
            experiment=args.experiment,
            workdir=args.workdir,
        )
        emit(validation_summary(result), result)
        return 0 if result["passed"] else 1

    return run_step("validate.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
