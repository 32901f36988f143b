"""Model benchmarks: dense inference against sliding windows, and throughput of every model.

    python bench/models.py [--size 1024] [--device cpu|cuda|auto] [--out bench/results]

Writes ``models-<device>.json`` and prints a table. Outputs of the fast and the slow method are
compared, so a speed-up never hides a wrong answer. Tensors are channels_last on both devices; on
CUDA, inference runs under bf16 autocast (equality is then checked at bf16 tolerance).
"""

from __future__ import annotations

import argparse
import json
import math
import platform
import sys
import time
from pathlib import Path
from typing import Any

# This file is named like the package it measures: keep its folder off the import path.
sys.path[:] = [p for p in sys.path if Path(p or ".").resolve() != Path(__file__).parent.resolve()]

import torch  # noqa: E402

from models import ARCHITECTURES, PatchClassifier, build, convolutionalize, densify  # noqa: E402

# A 64-px patch classifier whose heatmap has output stride 16 (four unpadded stages).
PATCH_ARGS = {
    "patch_size": 64,
    "channels": [16, 32, 64, 128],
    "convs_per_stage": 1,
    "pool_last": True,
    "hidden": 128,
}
REGISTRY_ARGS: dict[str, dict[str, Any]] = {
    "patch": PATCH_ARGS,
    "resnet": {"patch_size": 224},  # ResNet-18
    "fcn32s": {},
    "fcn16s": {},
    "fcn8s": {},
    "unet": {},
}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize()


def _time(fn: Any, device: torch.device, repeat: int = 3) -> tuple[float, Any]:
    out = fn()  # warm-up (and cuDNN autotuning)
    _sync(device)
    best = math.inf
    for _ in range(repeat):
        start = time.perf_counter()
        out = fn()
        _sync(device)
        best = min(best, time.perf_counter() - start)
    return best, out


def _ctx(device: torch.device) -> Any:
    if device.type == "cuda":
        return torch.autocast("cuda", dtype=torch.bfloat16)
    return torch.autocast("cpu", enabled=False)


def _prep(
    model: torch.nn.Module, x: torch.Tensor, device: torch.device
) -> tuple[torch.nn.Module, torch.Tensor]:
    # channels_last on both devices: oneDNN on CPU and cuDNN on GPU are fastest with it
    model = model.to(device).eval().to(memory_format=torch.channels_last)
    return model, x.to(device).contiguous(memory_format=torch.channels_last)


@torch.inference_mode()
def sliding_window(
    model: torch.nn.Module,
    x: torch.Tensor,
    patch: int,
    stride: int,
    positions: list[tuple[int, int]],
    batch: int,
    device: torch.device,
) -> torch.Tensor:
    """Logits of ``model`` on the patches at ``positions`` (cell indices at ``stride``)."""
    outs = []
    for i in range(0, len(positions), batch):
        chunk = positions[i : i + batch]
        patches = torch.stack(
            [
                x[0, :, r * stride : r * stride + patch, c * stride : c * stride + patch]
                for r, c in chunk
            ]
        ).contiguous(memory_format=torch.channels_last)
        with _ctx(device):
            outs.append(model(patches).float())
    return torch.cat(outs)


def bench_heatmap(size: int, device: torch.device, tol: float) -> dict[str, Any]:
    torch.manual_seed(0)
    clf = PatchClassifier(**PATCH_ARGS).eval()
    fcn = convolutionalize(clf)
    x = torch.randn(1, 3, size, size)
    s, p = fcn.output_stride, clf.patch_size
    fcn_d, xd = _prep(fcn, x, device)
    clf_d, _ = _prep(clf, x, device)

    def dense() -> torch.Tensor:
        with torch.inference_mode(), _ctx(device):
            return fcn_d(xd).float()

    t_dense, heat = _time(dense, device)
    n = (size - p) // s + 1
    positions = [(r, c) for r in range(n) for c in range(n)]
    t_slide, ref = _time(lambda: sliding_window(clf_d, xd, p, s, positions, 256, device), device)
    ref = ref.reshape(n, n, -1).permute(2, 0, 1)
    err = float((heat[0, :, :n, :n] - ref).abs().max())
    mpx = size * size / 1e6
    return {
        "what": f"convolutionalized {p}-px patch classifier, heatmap at stride {s}",
        "image": [size, size],
        "patches": len(positions),
        "dense_s": round(t_dense, 4),
        "sliding_window_s": round(t_slide, 4),
        "speedup": round(t_slide / t_dense, 2),
        "target_speedup": round(0.8 * (p / s) ** 2, 2),
        "dense_mpx_per_s": round(mpx / t_dense, 3),
        "sliding_mpx_per_s": round(mpx / t_slide, 3),
        "max_abs_diff": err,
        "equal": err <= tol,
    }


def bench_densify(size: int, device: torch.device, tol: float, sample: int) -> dict[str, Any]:
    torch.manual_seed(0)
    clf = PatchClassifier(**PATCH_ARGS).eval()
    dense = densify(convolutionalize(clf), 1)
    x = torch.randn(1, 3, size, size)
    p = clf.patch_size
    dense_d, xd = _prep(dense, x, device)
    clf_d, _ = _prep(clf, x, device)

    def run() -> torch.Tensor:
        with torch.inference_mode(), _ctx(device):
            return dense_d(xd).float()

    t_dense, heat = _time(run, device, 1)
    n = size - p + 1
    gen = torch.Generator().manual_seed(1)
    idx = torch.randperm(n * n, generator=gen)[:sample].tolist()
    positions = [divmod(i, n) for i in idx]
    t_sample, ref = _time(
        lambda: sliding_window(clf_d, xd, p, 1, positions, 512, device), device, 1
    )
    got = torch.stack([heat[0, :, r, c] for r, c in positions])
    err = float((got - ref).abs().max())
    t_slide = t_sample * (n * n) / len(positions)
    return {
        "what": f"densify(convolutionalize({p}-px classifier), 1): one prediction per pixel",
        "image": [size, size],
        "positions": n * n,
        "sliding_window_sampled": len(positions),
        "dense_s": round(t_dense, 3),
        "sliding_window_s_extrapolated": round(t_slide, 1),
        "speedup": round(t_slide / t_dense, 1),
        "max_abs_diff_on_sample": err,
        "equal": err <= tol,
    }


def bench_registry(size: int, device: torch.device) -> list[dict[str, Any]]:
    from models import to_dense

    rows = []
    x = torch.randn(1, 3, size, size)
    for arch in ARCHITECTURES:
        torch.manual_seed(0)
        model = to_dense(build(arch, **REGISTRY_ARGS.get(arch, {})).eval())
        model_d, xd = _prep(model, x, device)

        def run(m: torch.nn.Module = model_d, xd: torch.Tensor = xd) -> torch.Tensor:
            with torch.inference_mode(), _ctx(device):
                return m(xd)

        t, out = _time(run, device)
        rows.append(
            {
                "arch": arch,
                "args": REGISTRY_ARGS.get(arch, {}),
                "output": list(out.shape),
                "seconds": round(t, 4),
                "mpx_per_s": round(size * size / 1e6 / t, 3),
                "parameters": sum(p.numel() for p in model.parameters()),
            }
        )
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=1024)
    ap.add_argument("--device", default="auto")
    ap.add_argument(
        "--sample", type=int, default=2048, help="sliding-window positions sampled for densify"
    )
    ap.add_argument("--out", default=str(Path(__file__).parent / "results"))
    args = ap.parse_args()
    device = torch.device(
        "cuda"
        if args.device == "auto" and torch.cuda.is_available()
        else ("cpu" if args.device == "auto" else args.device)
    )
    tol = 1e-4 if device.type == "cpu" else 5e-2
    result = {
        "device": torch.cuda.get_device_name(device)
        if device.type == "cuda"
        else platform.processor() or "cpu",
        "device_type": device.type,
        "torch": torch.__version__,
        "threads": torch.get_num_threads(),
        "precision": "bf16 autocast, channels_last"
        if device.type == "cuda"
        else "fp32, channels_last",
        "command": f"python bench/models.py --size {args.size} --device {device.type}",
        "heatmap_vs_sliding_window": bench_heatmap(args.size, device, tol),
        "densify_vs_per_pixel_sliding_window": bench_densify(args.size, device, tol, args.sample),
        "registry_throughput": bench_registry(args.size, device),
    }
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    path = out / f"models-{device.type}.json"
    path.write_text(json.dumps(result, indent=2) + "\n")
    h, d = result["heatmap_vs_sliding_window"], result["densify_vs_per_pixel_sliding_window"]
    print(f"device {result['device']} ({result['precision']}), image {args.size} x {args.size}")
    print(f"{'method':<44}{'seconds':>10}{'speed-up':>10}{'equal':>7}")
    print(
        f"{'heatmap, stride 16 (convolutionalized)':<44}{h['dense_s']:>10.3f}{h['speedup']:>10.1f}{h['equal']!s:>7}"
    )
    print(
        f"{'  sliding window, stride 16':<44}{h['sliding_window_s']:>10.3f}  target >= {h['target_speedup']}"
    )
    print(
        f"{'per pixel, densify(..., 1)':<44}{d['dense_s']:>10.3f}{d['speedup']:>10.1f}{d['equal']!s:>7}"
    )
    print(
        f"{'  sliding window, every pixel (extrap.)':<44}{d['sliding_window_s_extrapolated']:>10.1f}"
    )
    print(f"\n{'model':<10}{'output':>22}{'seconds':>10}{'Mpx/s':>9}{'params':>12}")
    for r in result["registry_throughput"]:
        print(
            f"{r['arch']:<10}{r['output']!s:>22}{r['seconds']:>10.3f}{r['mpx_per_s']:>9.2f}{r['parameters']:>12,}"
        )
    print(f"\nwritten {path}")


if __name__ == "__main__":
    main()
