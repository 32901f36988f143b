"""Survey benchmark: every municipality of the Province of Monza e della Brianza at 1 m, from the
command line, two dates.

    python bench/survey.py [--work DIR] [--out bench/results] [--select CODE ...]

Steps (each a `wastewatch` command, timed, with the peak PSS of its whole process tree: the
command and every process it starts, Ray workers included): synthesis of the region for date 1,
its revisit (date 2), a 1 m training scene, training (patch defaults), the survey of date 1, the
survey of date 2, and `eval --survey` of both against the truth. Writes ``survey-cpu.json``.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import subprocess
import sys
import threading
import time
from pathlib import Path

# bench/models.py is named like the package: keep this folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

ROOT = Path(__file__).resolve().parents[1]
MUNICIPALITIES = ROOT.parent / "shared" / "data" / "municipalities" / "monza_brianza.geojson"
D1, D2 = "2026-06-15", "2027-06-15"


def _tree(pid: int) -> list[int]:
    out, todo = [], [pid]
    while todo:
        p = todo.pop()
        out.append(p)
        try:
            for tid in os.listdir(f"/proc/{p}/task"):
                with open(f"/proc/{p}/task/{tid}/children") as f:
                    todo.extend(int(c) for c in f.read().split())
        except OSError:
            continue
    return out


def _pss_kb(pid: int) -> int:
    try:
        with open(f"/proc/{pid}/smaps_rollup") as f:
            for line in f:
                if line.startswith("Pss:"):
                    return int(line.split()[1])
    except OSError:
        pass
    return 0


def _ray_pids() -> list[int]:
    """Ray's own processes (started detached from the command's tree)."""
    pids = []
    for p in os.listdir("/proc"):
        if p.isdigit():
            try:
                with open(f"/proc/{p}/cmdline", "rb") as f:
                    cmd = f.read()
            except OSError:
                continue
            if b"ray" in cmd and (
                b"raylet" in cmd or b"default_worker" in cmd or b"gcs_server" in cmd
            ):
                pids.append(int(p))
    return pids


def run(*args: str) -> tuple[float, float, str]:
    """Run ``wastewatch ARGS``; returns (seconds, peak PSS in GB of its processes, stdout)."""
    env = {**os.environ, "RAY_AUTH_MODE": "disabled"}
    start = time.perf_counter()
    proc = subprocess.Popen(
        [sys.executable, "-m", "pipeline.cli", "-q", *args],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        env=env,
    )
    peak = 0
    stop = threading.Event()

    def poll() -> None:
        nonlocal peak
        while not stop.is_set():
            pids = set(_tree(proc.pid)) | set(_ray_pids())
            peak = max(peak, sum(_pss_kb(p) for p in pids))
            stop.wait(0.5)

    watcher = threading.Thread(target=poll, daemon=True)
    watcher.start()
    out, err = proc.communicate()
    stop.set()
    watcher.join()
    seconds = time.perf_counter() - start
    if proc.returncode:
        raise SystemExit(f"wastewatch {' '.join(args)} failed ({proc.returncode}): {err}")
    return seconds, peak / 1e6, out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--work", default=".wastewatch/bench-survey")
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    ap.add_argument("--select", nargs="*", default=[])
    ap.add_argument(
        "--reuse",
        action="store_true",
        help="keep the steps already recorded in the results file whose outputs exist",
    )
    args = ap.parse_args()
    work = Path(args.work).absolute()
    work.mkdir(parents=True, exist_ok=True)
    select = [x for c in args.select for x in ("--select", c)]
    out_path = Path(args.out) / "survey-cpu.json"
    steps: dict[str, dict[str, object]] = {}
    if args.reuse and out_path.exists():
        steps = json.loads(out_path.read_text()).get("steps", {})
    done = {
        "synth_date1": work / "d1" / "scene.tif",
        "synth_date2": work / "d2" / "scene.tif",
        "synth_train": work / "train" / "scene.tif",
        "train": work / "model" / "card.json",
    }

    def save() -> None:
        out_path.parent.mkdir(parents=True, exist_ok=True)
        out_path.write_text(json.dumps(result(), indent=2) + "\n")

    def result() -> dict[str, object]:
        return {
            "machine": f"{platform.machine()}, {os.cpu_count()} cores",
            "device": "cpu",
            "region": "Province of Monza e della Brianza (ISTAT boundaries, ../shared/data)",
            "gsd_m": 1.0,
            "steps": steps,
            "goal": "status agreement >= 0.9 of the detected truth sites; synthesis <= 600 s",
        }

    def step(name: str, *cmd: str, pixels: float | None = None) -> str:
        if name in steps and name in done and done[name].exists():
            print(f"{name:<12} kept from the results file", flush=True)
            return ""
        seconds, pss, out = run(*cmd)
        steps[name] = {
            "command": "wastewatch " + " ".join(cmd).replace(str(work) + "/", ""),
            "seconds": round(seconds, 1),
            "peak_pss_gb": round(pss, 2),
        }
        if pixels:
            steps[name]["megapixels_per_second"] = round(pixels / 1e6 / seconds, 2)
        print(f"{name:<12} {seconds:8.1f} s  {pss:5.2f} GB", flush=True)
        save()
        return out

    imagery = work / "imagery"
    imagery.mkdir(exist_ok=True)
    step(
        "synth_date1",
        "synth",
        "scene",
        "--out",
        str(work / "d1"),
        "--gsd",
        "1.0",
        "--seed",
        "21",
        "--landfills",
        "400",
        "--date",
        D1,
        "--aoi",
        str(MUNICIPALITIES),
        *select,
    )
    import rasterio

    with rasterio.open(work / "d1" / "scene.tif") as src:
        grid_px = src.width * src.height
    steps["synth_date1"]["grid_megapixels"] = round(grid_px / 1e6, 1)
    steps["synth_date1"]["megapixels_per_second"] = round(
        grid_px / 1e6 / float(steps["synth_date1"]["seconds"]),
        2,  # type: ignore[arg-type]
    )
    step(
        "synth_date2",
        "synth",
        "revisit",
        "--like",
        str(work / "d1"),
        "--out",
        str(work / "d2"),
        "--seed",
        "22",
        pixels=grid_px,
    )
    step(
        "synth_train",
        "synth",
        "scene",
        "--out",
        str(work / "train"),
        "--size",
        "2048",
        "--gsd",
        "1.0",
        "--seed",
        "1",
        "--landfills",
        "150",
    )
    step(
        "train",
        "train",
        "--arch",
        "patch",
        "--scenes",
        str(work / "train" / "scene.tif"),
        "--labels",
        str(work / "train" / "truth.geojson"),
        "--out",
        str(work / "model"),
        "--seed",
        "0",
    )
    for name, date, folder in (("survey_date1", D1, "d1"), ("survey_date2", D2, "d2")):
        link = imagery / f"{date}.tif"
        if not link.exists():
            link.symlink_to(work / folder / "scene.tif")
        step(
            name,
            "survey",
            "--municipalities",
            str(MUNICIPALITIES),
            *select,
            "--scenes",
            str(imagery),
            "--model",
            str(work / "model"),
            "--date",
            date,
            "--out",
            str(work / "monza-brianza"),
            "--max-age",
            "300",
            "--no-prefect",
            pixels=grid_px,
        )
        scores = json.loads(
            run(
                "eval",
                "--survey",
                str(work / "monza-brianza" / date),
                "--truth",
                str(work / folder / "truth.geojson"),
            )[2]
        )
        steps[name]["eval"] = scores
        info = json.loads((work / "monza-brianza" / date / "survey.json").read_text())
        steps[name]["municipalities"] = len(info["municipalities"])
        steps[name]["counts_by_status"] = info["counts_by_status"]
        save()
    save()
    print(f"written {out_path}")


if __name__ == "__main__":
    main()
