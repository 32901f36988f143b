"""``wastewatch bench``: the benchmarks, as JSON in ``bench/results``."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import click

from ..errors import InputError

__all__ = ["bench_cmd"]

#: benchmarks kept as scripts in the source tree's bench/ folder
SCRIPTS = {"models": "models.py", "training": "training.py", "survey": "survey.py"}
CHOICES = ("job", *SCRIPTS, "all")


def _bench_folder() -> Path:
    return Path(__file__).resolve().parents[2] / "bench"


@click.command("bench")
@click.argument("what", nargs=-1, type=click.Choice(CHOICES))
@click.option("--out", type=click.Path(), default=None, help="Results folder [bench/results].")
@click.option("--work", type=click.Path(), default=".wastewatch/bench", show_default=True,
              help="Scratch folder (scenes, models, outputs; reused between runs).")  # fmt: skip
@click.option("--device", type=click.Choice(["cpu", "cuda"]), default="cpu", show_default=True)
@click.option("--sizes", default="25,400", show_default=True,
              help="Scene sizes of the job benchmark, Mpx, comma-separated.")  # fmt: skip
@click.option("--model", type=click.Path(), default=None,
              help="Model of the job benchmark (default: train the patch defaults at 1 m).")  # fmt: skip
@click.option("--tile-size", type=int, default=1024, show_default=True)
@click.option("--repeat", type=int, default=1, show_default=True,
              help="Runs of each job; the fastest counts (a shared machine's noise only slows).")  # fmt: skip
def bench_cmd(
    what: tuple[str, ...],
    out: str | None,
    work: str,
    device: str,
    sizes: str,
    model: str | None,
    tile_size: int,
    repeat: int,
) -> None:
    """Run benchmarks: job (end to end vs the bare model, memory vs scene size), models,
    training, survey (WHAT; default job; all = job, models, training)."""
    chosen = set(what or ("job",))
    if "all" in chosen:
        chosen = {"job", "models", "training"}
    if device == "cuda":
        import torch

        if not torch.cuda.is_available():
            raise InputError("--device cuda: this machine has no CUDA GPU: use --device cpu")
    try:
        size_list = [int(s) for s in sizes.split(",") if s.strip()]
    except ValueError:
        raise InputError(f"--sizes: give whole Mpx, comma-separated (got {sizes!r})") from None
    if not size_list or min(size_list) <= 0:
        raise InputError(f"--sizes: give positive sizes in Mpx (got {sizes!r})")
    if repeat < 1:
        raise InputError(f"--repeat: give at least 1 (got {repeat})")
    results = Path(out) if out else _bench_folder() / "results"
    results.mkdir(parents=True, exist_ok=True)
    if "job" in chosen:
        from ..bench.job import bench_job

        report = bench_job(Path(work) / "job", sorted(size_list), device, model, tile_size, repeat)
        report["command"] = "wastewatch " + " ".join(sys.argv[1:])
        path = results / f"job-{device}.json"
        path.write_text(json.dumps(report, indent=2) + "\n")
        t, m = report["throughput"], report["memory"]
        click.echo(
            f"job: {t['ratio']:.2f} of the bare model (goal {t['goal']}); memory "
            f"x{m['ratio']:.2f}, {m['largest_gb']:.2f} GB (goal x1.25, 3 GB) -> {path}"
        )
    for name in sorted(chosen & set(SCRIPTS)):
        script = _bench_folder() / SCRIPTS[name]
        if not script.exists():
            raise InputError(f"bench {name}: {script} not found: run from a source checkout")
        args = [sys.executable, str(script), "--out", str(results)]
        if name == "models":
            args += ["--device", device]
        click.echo(f"{name}: python {script.name} ...")
        done = subprocess.run(args, check=False)
        if done.returncode:
            raise click.ClickException(f"bench {name} failed (exit {done.returncode})")
