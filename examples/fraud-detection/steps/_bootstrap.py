"""Make `fraud_detection` importable when a step runs as `python steps/<step>.py`.

On the job cluster PYTHONPATH already holds the checkout root and `<checkout>/src`; this
also covers a plain local run. The steps directory itself is taken off sys.path again so
that step files named like common modules (`evaluate`, `train`...) never shadow packages.
"""

import sys
from pathlib import Path

_STEPS = Path(__file__).resolve().parent
_SRC = _STEPS.parent / "src"

sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != _STEPS]
if str(_SRC) not in sys.path:
    sys.path.insert(0, str(_SRC))
