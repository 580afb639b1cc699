"""Score a registered version, and the champion, on the model's validation rows; write the predictions.

    python steps/score.py --model-name NAME --version V --predictions PATH [--champion URI] [--dataset toy|full|tiny]

The one validation step that loads a model (a pickle runs code as it loads): it judges nothing. It writes the
predictions of models:/NAME/V, and of --champion (models:/prod.fraud.card_fraud@champion) when that exists, to
PATH for steps/judge.py. An empty --champion, or one that does not exist yet, is "no champion yet".
"""

import argparse

import _bootstrap  # noqa: F401
from fraud_detection import VALIDATION_DATASET
from fraud_detection.cli import add_model_arguments, validation_dataset
from fraud_detection.models import ModelError, select
from fraud_detection.reporting import emit, run_step


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="score.py", description=__doc__.splitlines()[0])
    add_model_arguments(parser, name_required=True)
    parser.add_argument("--version", required=True, help="version number or alias")
    parser.add_argument("--champion", default="", metavar="URI", help="e.g. models:/prod.fraud.card_fraud@champion")
    parser.add_argument("--dataset", type=validation_dataset, default=VALIDATION_DATASET, help="empty = toy")
    parser.add_argument("--predictions", required=True, metavar="PATH", help="where the predictions are written")
    args = parser.parse_args(argv)
    try:
        spec = select(args.model_name, args.model)
    except ModelError as exc:
        parser.error(str(exc))

    def body():
        from fraud_detection.validation import score, write_predictions

        predictions = score(spec, args.model_name, args.version, champion=args.champion, dataset=args.dataset)
        path = write_predictions(args.predictions, predictions)
        said = "predicted" if predictions["candidate"].get("pred") is not None else "could not predict"
        champion = f"; champion version {predictions['champion_version']}" if predictions["champion_scored"] else ""
        emit(
            [f"scored {args.model_name} version {predictions['version']}: {said}{champion}; predictions in {path}"],
            {"predictions": str(path), "model": args.model_name, "version": predictions["version"]},
        )

    return run_step("score.py", body)


if __name__ == "__main__":
    raise SystemExit(main())
