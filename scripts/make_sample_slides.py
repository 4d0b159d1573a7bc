"""Generate ``sample_slides/``: synthetic H&E tiles with known mitotic figures, their ground truth and a manifest.

Usage::

    python scripts/make_sample_slides.py [--out sample_slides]
    python scripts/make_sample_slides.py --holdout 8 --out /tmp/holdout   # fresh seeds, for an honest check

Writes four 1024x1024 tiles at 0.25 µm/px drawn by :func:`spindledx.mitosis.synthetic.make_tile` (seeded, so the
output is the same on every run) as tiled, JPEG-compressed (quality 90) TIFF with the resolution in the TIFF
resolution tags (40,000 px/cm), which keeps each tile near 250 kB. Also writes

* ``ground_truth.csv``: ``image, figure, cx, cy, kind, size_um`` (pixel coordinates, x = column), readable by
  ``spindledx evaluate --truth``;
* ``manifest.csv``: ``image, case, mpp, expected_count, annotations, panel, diagnosis, site`` for the batch runner.

The tiles are synthetic: they demonstrate the pipeline, they do not measure its accuracy on tissue.
"""

from __future__ import annotations

import argparse
import csv
from pathlib import Path

import tifffile

from spindledx.mitosis.synthetic import make_tile

MPP = 0.25
SIZE_PX = 1024
JPEG_QUALITY = 90

# name, case, mitoses, seed, stain strength, note
TILES = (
    ("tile_01_low.tif", "SYN-A", 2, 101, 1.0, "few mitoses"),
    ("tile_02_moderate.tif", "SYN-A", 6, 102, 1.0, "moderate"),
    ("tile_03_hotspot.tif", "SYN-B", 12, 103, 1.0, "hotspot"),
    ("tile_04_pale.tif", "SYN-B", 5, 104, 0.55, "pale (under-stained) slide"),
)


# IHC panels recorded for the synthetic cases, so that the batch demo shows the IHC side too: the reference case
# (lung, leiomyosarcoma) and a KIT-negative, DOG1-positive gastric GIST. Invented teaching cases.
CASE_IHC = {
    "SYN-A": {"panel": "actin+ desmin+ CK-pan- CD34- CD117- S-100-", "diagnosis": "leiomyosarcoma", "site": "lung"},
    "SYN-B": {"panel": "CD117- DOG1+ CD34+ SMA- S100- desmin-", "diagnosis": "gist", "site": "gi_tract"},
}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=Path(__file__).resolve().parents[1] / "sample_slides")
    parser.add_argument("--holdout", type=int, default=0, metavar="N",
                        help="instead write N fresh tiles (seeds 9000+, never used while tuning the generator) "
                             "to check that the detector's hits on sample_slides are not seed luck")
    args = parser.parse_args(argv)
    tiles = TILES
    if args.holdout:
        tiles = tuple((f"holdout_{i:02d}.tif", f"HOLD-{i // 4}", TILES[i % 4][2], 9000 + i, TILES[i % 4][4],
                       f"held-out seed, {TILES[i % 4][5]}") for i in range(args.holdout))
    out: Path = args.out
    out.mkdir(parents=True, exist_ok=True)
    truth_rows, manifest_rows = [], []
    pixels_per_cm = 1e4 / MPP
    for name, case, n_mitoses, seed, strength, note in tiles:
        rgb, figures = make_tile(size_px=SIZE_PX, n_mitoses=n_mitoses, seed=seed, mpp=MPP, stain_strength=strength)
        tifffile.imwrite(out / name, rgb, photometric="rgb", tile=(256, 256), compression="jpeg",
                         compressionargs={"level": JPEG_QUALITY}, resolution=(pixels_per_cm, pixels_per_cm),
                         resolutionunit="CENTIMETER",
                         description=f"spindledx synthetic H&E tile (seed {seed}, {note}); not real tissue")
        for index, fig in enumerate(figures):
            truth_rows.append({"image": name, "figure": index, "cx": round(fig.x, 1), "cy": round(fig.y, 1),
                               "kind": fig.kind, "size_um": fig.size_um})
        manifest_rows.append({"image": name, "case": case, "mpp": MPP, "expected_count": len(figures),
                              "annotations": "ground_truth.csv", **CASE_IHC.get(case, {})})
        print(f"{out / name}: {len(figures)} figures ({note}), {(out / name).stat().st_size / 1e3:.0f} kB")
    _write_csv(out / "ground_truth.csv", truth_rows)
    _write_csv(out / "manifest.csv", manifest_rows)
    total = sum(p.stat().st_size for p in out.iterdir() if p.is_file())
    print(f"{out}: {len(tiles)} tiles, {len(truth_rows)} figures, {total / 1e6:.2f} MB in all")
    return 0


def _write_csv(path: Path, rows: list[dict]) -> None:
    with open(path, "w", newline="", encoding="utf-8") as fh:
        writer = csv.DictWriter(fh, fieldnames=list(rows[0]))
        writer.writeheader()
        writer.writerows(rows)


if __name__ == "__main__":
    raise SystemExit(main())
