"""Print top-1 / top-3 accuracy and calibration of the IHC interpreter on its literature test panels.

Usage: ``.venv/bin/python scripts/evaluate_ihc_cases.py [--format json] [--cases FILE]``
(the same as ``spindledx panel-cases``).  The cases (``src/spindledx/ihc/data/cases.csv``) were written from
published profiles before the model was first evaluated and are never used to fit it.
"""

from __future__ import annotations

import sys

from spindledx.cli import main

if __name__ == "__main__":
    sys.exit(main(["panel-cases", *sys.argv[1:]]))
