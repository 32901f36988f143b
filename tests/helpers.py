"""Helpers shared by the tests: small architecture arguments and the CLI as a subprocess."""

from __future__ import annotations

import subprocess
import sys

#: every registry architecture at a size that runs in a second on a CPU.
SMALL_ARCH_ARGS: dict[str, dict[str, object]] = {
    "patch": {"patch_size": 32, "channels": [8, 16]},
    "resnet": {"patch_size": 64, "width": 8, "layers": [1, 1]},
    "fcn32s": {"widths": [8, 8, 8, 16, 16], "fc_width": 16},
    "fcn16s": {"widths": [8, 8, 8, 16, 16], "fc_width": 16},
    "fcn8s": {"widths": [8, 8, 8, 16, 16], "fc_width": 16},
    "unet": {"base": 8, "depth": 3},
}


def wastewatch(*args: str, cwd: object = None) -> subprocess.CompletedProcess:
    """Run the real command line in a subprocess."""
    return subprocess.run(
        [sys.executable, "-m", "pipeline.cli", *args],
        capture_output=True,
        text=True,
        cwd=cwd,
        timeout=300,
    )


def assert_bad_input(proc: subprocess.CompletedProcess, *words: str) -> None:
    """Exit code 2, one line on stderr naming ``words``, no traceback."""
    assert proc.returncode == 2, proc.stderr
    lines = proc.stderr.strip().splitlines()
    assert len(lines) == 1, proc.stderr
    assert "Traceback" not in proc.stderr
    for w in words:
        assert w in lines[0], lines[0]


def rgb_card(
    arch: str, args: dict[str, object], model: object, mean: float = 0.0, std: float = 1.0
):  # type: ignore[no-untyped-def]
    """A two-class RGB model card at 0.5 m for a test model."""
    from models import make_card

    return make_card(
        arch,
        dict(args),
        model,
        classes=["background", "landfill"],  # type: ignore[arg-type]
        bands=["red", "green", "blue"],
        mean=[mean] * 3,
        std=[std] * 3,
        gsd_m=0.5,
    )
