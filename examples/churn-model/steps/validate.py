"""Validate a registered model version on freshly generated data.

    python steps/validate.py --model-name churn-model --version V
                             [--min-accuracy 0.6] [--min-roc-auc 0.6]

Checks: loads, signature, predicts, shape, no_nan, binary_labels, min_accuracy, min_roc_auc.
Logs the metrics and checks as a new MLflow run tagged validation_of=<name>/<version>.
Exit code 0 when every check passes, 1 when one fails.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import EXPERIMENT_NAME, MODEL_NAME
from churn_model.reporting import emit, fmt_metrics, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="validate.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--version", required=True, help="version number or alias (e.g. champion)")
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
            min_accuracy=args.min_accuracy,
            min_roc_auc=args.min_roc_auc,
            experiment=args.experiment,
            workdir=args.workdir,
        )
        failed = [name for name, ok in result["checks"].items() if not ok]
        lines = [
            f"validated {result['model']} version {result['version']}: "
            + ("PASSED" if result["passed"] else f"FAILED ({', '.join(failed)})")
        ]
        if result["metrics"]:
            lines.append(f"metrics: {fmt_metrics(result['metrics'])}")
        lines += [f"  - {error}" for error in result["errors"]]
        lines.append(f"validation run {result['validation_run_id']}")
        emit(lines, result)
        return 0 if result["passed"] else 1

    return run_step("validate.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
