"""Score a registered model version, and the champion, on the validation rows; write the predictions.

    python steps/score.py --model-name NAME --version V --predictions PATH [--champion URI] [--dataset toy|full|tiny]

The one validation step that loads a model: its code (a pickle runs code when it is loaded) runs here and
nowhere else. It judges nothing: it writes the predictions of the candidate models:/NAME/V (and of
--champion when one exists) on the validation set of --dataset's size to PATH, for steps/judge.py, which
computes the metrics from them and the labels and prints the verdict. Its own last line (a summary) is
not a verdict, and the bot does not read it as one.
"""

import argparse

import _bootstrap  # noqa: F401
from churn_model import MODEL_NAME, VALIDATION_DATASET
from churn_model.data import DATASET_SIZES
from churn_model.reporting import emit, run_step


def _dataset(value: str) -> str:
    # The bot passes {dataset}, which may be empty: empty means the default size.
    return value.strip() or VALIDATION_DATASET


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="score.py", description=__doc__.splitlines()[0])
    parser.add_argument("--model-name", default=MODEL_NAME)
    parser.add_argument("--version", required=True, help="version number or alias (e.g. champion)")
    parser.add_argument(
        "--champion", default="", metavar="URI", help="e.g. models:/prod.ml.churn@champion (may be empty)"
    )
    parser.add_argument("--dataset", type=_dataset, choices=list(DATASET_SIZES), default=VALIDATION_DATASET)
    parser.add_argument("--predictions", required=True, metavar="PATH", help="where the predictions are written")
    args = parser.parse_args(argv)

    def body():
        from churn_model.pipeline import score, write_predictions

        predictions = score(args.model_name, args.version, champion=args.champion, dataset=args.dataset)
        path = write_predictions(args.predictions, predictions)
        candidate = predictions["candidate"]
        said = "predicted" if candidate.get("pred") is not None else "could not predict"
        emit(
            [f"scored {predictions['model']} version {predictions['version']}: {said}; predictions in {path}"],
            {"predictions": str(path), "model": predictions["model"], "version": predictions["version"]},
        )
        return 0

    return run_step("score.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
