"""Start-up time of the installed CLI against a floor measured in the same run.

Floor: ``python -c "import numpy"``. Measured: ``spindledx --version`` (the console script), ``spindledx --help``
and ``python -c "import spindledx.ihc.lookups"``. Each command runs ``--repeat`` times; the median wall time and
the peak resident memory (``/usr/bin/time -f %M`` when available) are printed with the ratio to the floor.
Target: ``spindledx --version`` at most 4x the floor.

Usage::

    .venv/bin/python bench/bench_startup.py [--repeat 5]
"""

from __future__ import annotations

import argparse
import shutil
import statistics
import subprocess
import sys
import time
from pathlib import Path


def measure(cmd: list[str], repeat: int) -> tuple[float, int | None]:
    """Median wall seconds and the largest peak RSS (kB) over ``repeat`` runs."""
    times, peaks = [], []
    gnu_time = shutil.which("time") if Path("/usr/bin/time").exists() else None
    for _ in range(repeat):
        full = ["/usr/bin/time", "-f", "%M", *cmd] if gnu_time else cmd
        start = time.perf_counter()
        done = subprocess.run(full, capture_output=True, text=True)
        times.append(time.perf_counter() - start)
        if done.returncode != 0:
            raise SystemExit(f"{' '.join(cmd)} failed: {done.stderr.strip()[-300:]}")
        if gnu_time:
            peaks.append(int(done.stderr.strip().splitlines()[-1]))
    return statistics.median(times), (max(peaks) if peaks else None)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeat", type=int, default=5)
    args = parser.parse_args()
    python = sys.executable
    script = str(Path(python).with_name("spindledx"))
    floor, floor_kb = measure([python, "-c", "import numpy"], args.repeat)
    rows = [("python -c 'import numpy' (floor)", floor, floor_kb)]
    for label, cmd in (("spindledx --version", [script, "--version"]),
                       ("spindledx --help", [script, "--help"]),
                       ("import spindledx.ihc.lookups", [python, "-c", "import spindledx.ihc.lookups"])):
        seconds, kb = measure(cmd, args.repeat)
        rows.append((label, seconds, kb))
    for label, seconds, kb in rows:
        memory = f"{kb / 1024:6.0f} MB" if kb else "   n/a"
        print(f"{label:36s} {seconds:6.3f} s  {memory}  {seconds / floor:5.1f}x floor")
    return 0


if __name__ == "__main__":
    sys.exit(main())
