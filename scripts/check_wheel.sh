#!/usr/bin/env bash
# Build a wheel from this checkout, install it in a fresh venv OUTSIDE the checkout and score a sample tile with
# the shipped model (package data), then renders its review page (templates are package data). Prints the JSON
# count, the page size and the timings. Usage: scripts/check_wheel.sh [PY]
set -euo pipefail
REPO="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-python3}"
WORK="$(mktemp -d /tmp/spindledx-wheel.XXXXXX)"
trap 'rm -rf "$WORK"' EXIT
t0=$(date +%s)
"$PY" -m venv "$WORK/venv"
"$WORK/venv/bin/pip" install --quiet --upgrade pip
mkdir "$WORK/src"  # build from a copy, so no build/ folder is left in the checkout
cp -r "$REPO/pyproject.toml" "$REPO/README.md" "$REPO/src" "$WORK/src/"
find "$WORK/src" -name '*.egg-info' -prune -exec rm -rf {} + -o -name __pycache__ -prune -exec rm -rf {} +
"$WORK/venv/bin/pip" wheel --quiet --no-deps -w "$WORK/dist" "$WORK/src"
WHEEL=$(ls "$WORK"/dist/spindledx-*.whl)
"$WORK/venv/bin/pip" install --quiet "$WHEEL${EXTRAS:+[$EXTRAS]}"
t1=$(date +%s)
echo "installed size: $(du -sm "$WORK/venv/lib" | cut -f1) MB in $WORK/venv/lib (${EXTRAS:-no extras})"
cp "$REPO/sample_slides/tile_03_hotspot.tif" "$WORK/tile.tif"
cd "$WORK"  # neither the checkout nor its models/ folder is reachable from here
"$WORK/venv/bin/python" - <<'PY'
import importlib.resources, spindledx, spindledx.detection.model as m
assert "site-packages" in spindledx.__file__, spindledx.__file__
print("package:", spindledx.__file__)
print("model:", m.DEFAULT_DESCRIPTION, "sha256", m.shipped_description().sha256[:12])
PY
"$WORK/venv/bin/spindledx" score tile.tif --format json > score.json
"$WORK/venv/bin/python" -c "import json; r = json.load(open('score.json'))[0]; \
print('scored', r['image'], 'count', r['count'], 'per_10hpf', r['mitoses_per_10hpf'])"
# the pages are rendered from templates that are package data: a review page from the installed wheel
"$WORK/venv/bin/spindledx" score tile.tif --out scored > /dev/null
"$WORK/venv/bin/spindledx" review scored > /dev/null
"$WORK/venv/bin/python" -c "import pathlib; p = pathlib.Path('scored/review.html').read_text(); \
assert p.count(\"class='card'\") >= 1, 'no candidate on the review page'; print('review page', len(p), 'bytes')"
t2=$(date +%s)
echo "wheel install: $((t1 - t0)) s, score: $((t2 - t1)) s"
