"""Train a model into Experiments_/<run>/ (same as `mfrec train`).

Run `python Main.py --help` for the options.
"""

import sys
from pathlib import Path

try:
    import mfrec  # noqa: F401  (installed with pip install -e .)
except ImportError:  # running from a checkout without installing: use the src/ layout directly
    sys.path.insert(0, str(Path(__file__).resolve().parent / "src"))

from mfrec.cli import run_script

if __name__ == "__main__":
    run_script("train")
