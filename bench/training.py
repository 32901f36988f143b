"""Training benchmark: models trained by `wastewatch train` on one synthetic scene, scored on
a scene synthesized with another seed (hard negatives included).

    python bench/training.py [--work DIR] [--out bench/results] [--only patch|unet]

Targets: each architecture's defaults (no tuning flag) train on a 4096 x 4096 scene in at most 10
minutes on 2 cores; the patch classifier reaches object-level F1 >= 0.85 on an unseen scene, the
U-Net IoU >= 0.6 on landfill pixels. Writes ``training-cpu.json`` and prints a table.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

# bench/models.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

# Every run uses the architecture's defaults (``pipeline/training/defaults.py``): no tuning flags.
RUNS = {
    "patch": {"args": ["--arch", "patch", "--seed", "0"], "limit_s": 600, "target": ("f1", 0.85)},
    "unet": {
        "args": ["--arch", "unet", "--seed", "0"],
        "limit_s": 600,
        "target": ("pixel_iou", 0.6),
    },
}
TRAIN_SIZE = 4096
TRAIN_SITES = 240


def ww(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", "-q", *args],
        check=True,
        capture_output=True,
        text=True,
    )


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=".wastewatch/bench-training")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--only", choices=sorted(RUNS), default=None)
    args = ap.parse_args()
    work = Path(args.work)
    train, test = work / "train", work / "test"
    if not (train / "scene.tif").exists():
        ww(
            "synth",
            "scene",
            "--out",
            str(train),
            "--size",
            str(TRAIN_SIZE),
            "--seed",
            "1",
            "--landfills",
            str(TRAIN_SITES),
        )
    if not (test / "scene.tif").exists():
        ww(
            "synth",
            "scene",
            "--out",
            str(test),
            "--size",
            "2048",
            "--seed",
            "99",
            "--landfills",
            "30",
        )
    from pipeline.evaluation import evaluate_detections, pixel_metrics

    out_path = Path(args.out) / "training-cpu.json"
    results = json.loads(out_path.read_text()) if out_path.exists() else {}
    results.update(
        {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "device": "cpu",
            "train_scene": f"synth scene --size {TRAIN_SIZE} --seed 1 --landfills {TRAIN_SITES}"
            " (0.5 m)",
            "test_scene": "synth scene --size 2048 --seed 99 --landfills 30 (0.5 m)",
        }
    )
    for name, run in RUNS.items():
        if args.only and name != args.only:
            continue
        model = work / f"model-{name}"
        cmd = [
            "train",
            *run["args"],
            "--scenes",
            str(train / "scene.tif"),
            "--labels",
            str(train / "truth.geojson"),
            "--out",
            str(model),
        ]
        start = time.perf_counter()
        ww(*cmd)
        train_s = time.perf_counter() - start
        out = work / f"out-{name}"
        start = time.perf_counter()
        ww(
            "run",
            "--aoi",
            str(test / "aoi.geojson"),
            "--scenes",
            str(test / "scene.tif"),
            "--model",
            str(model),
            "--out",
            str(out),
            "--overwrite",
            "--no-prefect",
            "--executor",
            "local",
        )
        run_s = time.perf_counter() - start
        scores = {
            **evaluate_detections(out / "detections.geojson", test / "truth.geojson"),
            **pixel_metrics(out / "mask.tif", test / "truth.geojson"),
        }
        card = json.loads((model / "card.json").read_text())
        key, goal = run["target"]
        results[name] = {
            "command": "wastewatch "
            + " ".join(cmd[:1] + run["args"])
            + " --scenes TRAIN --labels TRUTH",
            "train_seconds": round(train_s, 1),
            "time_limit_s": run["limit_s"],
            "job_seconds": round(run_s, 1),
            "validation": card["metrics"],
            "test": scores,
            "target": {key: goal},
            "met": bool(scores[key] >= goal and train_s <= run["limit_s"]),
        }
    out_path.parent.mkdir(parents=True, exist_ok=True)
    out_path.write_text(json.dumps(results, indent=2) + "\n")
    print(f"{'model':<8}{'train s':>9}{'F1':>7}{'P':>7}{'R':>7}{'px IoU':>8}  target   met")
    for name in RUNS:
        if name in results:
            r = results[name]
            t = r["test"]
            goal = ", ".join(f"{k} >= {v}" for k, v in r["target"].items())
            print(
                f"{name:<8}{r['train_seconds']:>9.1f}{t['f1']:>7.3f}{t['precision']:>7.3f}"
                f"{t['recall']:>7.3f}{t['pixel_iou']:>8.3f}  {goal} in {r['time_limit_s']} s  {r['met']}"
            )
    print(f"written {out_path}")


if __name__ == "__main__":
    main()
