"""``wastewatch train``: labelled scenes in, a checkpoint out."""

from __future__ import annotations

import click

__all__ = ["train_cmd"]

_ARCHES = ["patch", "resnet", "fcn32s", "fcn16s", "fcn8s", "unet"]


def _defaults_table() -> str:
    from ..training.defaults import ARCH_DEFAULTS

    lines = ["\b", "Defaults per --arch (epochs, samples, batch size, learning rate):"]
    for arch, d in ARCH_DEFAULTS.items():
        what = "patches per class" if arch in ("patch", "resnet") else f"{d.crop_size}-px crops"
        lines.append(
            f"  {arch:<7} {d.epochs} epochs, {d.samples} {what}, batch {d.batch_size}, lr {d.lr:g}"
        )
    return "\n".join(lines)


@click.command(
    "train",
    epilog=(
        "Each architecture's defaults train a useful model on a 2-core CPU in at most about "
        "10 minutes on a 4096 x 4096 scene."
    ),
)
@click.option("--arch", type=click.Choice(_ARCHES), default="patch", show_default=True)
@click.option(
    "--scenes",
    "scenes",
    required=True,
    multiple=True,
    type=click.Path(),
    help="Training scene (repeatable; pairs with --labels in order).",
)
@click.option(
    "--labels",
    "labels",
    required=True,
    multiple=True,
    type=click.Path(),
    help="Labels with a 'class' attribute: polygons, or points/lines (sparse).",
)
@click.option("--out", required=True, type=click.Path(), help="Checkpoint folder to write.")
@click.option("--epochs", type=int, default=None, help="Passes over the samples.")
@click.option("--patch-size", type=int, default=None, help="Patch classifiers: patch side, px.")
@click.option("--crop-size", type=int, default=None, help="Segmenters: training crop side, px.")
@click.option(
    "--samples",
    type=int,
    default=None,
    help=(
        "How much to draw from the scenes: patch classifiers (patch, resnet): patches PER "
        "CLASS; segmenters (fcn*, unet): random crops IN ALL."
    ),
)
@click.option("--batch-size", type=int, default=None, help="Samples per step.")
@click.option("--lr", type=float, default=None, help="AdamW learning rate.")
@click.option(
    "--seed", type=int, default=0, show_default=True, help="Same seed, same weights (CPU)."
)
@click.option("--sparse", is_flag=True, default=None, help="Treat polygons as sparse labels too.")
@click.option(
    "--border-weight",
    type=float,
    default=0.0,
    show_default=True,
    help="Segmenters: w0 of the U-Net border weight map (0: off).",
)
@click.option(
    "--pixel-mask",
    type=float,
    default=0.0,
    show_default=True,
    help="Segmenters: fraction of labelled pixels dropped from each step's loss.",
)
@click.option("--resume", is_flag=True, help="Continue from the last finished epoch in --out.")
@click.option(
    "--staged",
    is_flag=True,
    help="fcn16s/fcn8s: train FCN-32s first, then each finer net from the coarser.",
)
@click.option(
    "--workers",
    type=int,
    default=1,
    show_default=True,
    help="Data-parallel workers on Ray Train (1: this process).",
)
@click.option("--ray-address", default=None, help="Ray cluster for the workers.")
def train_cmd(
    arch: str,
    scenes: tuple[str, ...],
    labels: tuple[str, ...],
    out: str,
    epochs: int | None,
    patch_size: int | None,
    crop_size: int | None,
    samples: int | None,
    batch_size: int | None,
    lr: float | None,
    seed: int,
    sparse: bool | None,
    border_weight: float,
    pixel_mask: float,
    resume: bool,
    staged: bool,
    workers: int,
    ray_address: str | None,
) -> None:
    """Train a model on labelled scenes; a checkpoint (safetensors + JSON card) every epoch."""
    from models import PATCH_CLASSIFIERS, TrainConfig

    from ..training.defaults import ARCH_DEFAULTS
    from ..training.train import train_model

    d = ARCH_DEFAULTS[arch]
    args = dict(d.args)
    if patch_size is not None:
        if arch not in PATCH_CLASSIFIERS:
            raise click.UsageError("--patch-size applies to patch classifiers (patch, resnet)")
        args["patch_size"] = patch_size
    if crop_size is not None and arch in PATCH_CLASSIFIERS:
        raise click.UsageError("--crop-size applies to segmenters (fcn32s/16s/8s, unet)")
    config = TrainConfig(
        epochs=d.epochs if epochs is None else epochs,
        lr=d.lr if lr is None else lr,
        seed=seed,
        batch_size=d.batch_size if batch_size is None else batch_size,
        border_w0=border_weight,
        pixel_mask=pixel_mask,
    )
    card = train_model(
        arch,
        list(scenes),
        list(labels),
        out,
        arch_args=args,
        config=config,
        samples=d.samples if samples is None else samples,
        crop_size=d.crop_size if crop_size is None else crop_size,
        sparse=sparse,
        resume=resume,
        staged=staged,
        workers=workers,
        ray_address=ray_address,
    )
    nan = float("nan")
    m = card.metrics
    click.echo(
        f"model  {out}  ({card.model_id}; validation accuracy {m.get('accuracy', nan):.3f}, "
        f"F1 {m.get('f1', nan):.3f}, IoU {m.get('iou', nan):.3f})"
    )


train_cmd.help = f"{train_cmd.help}\n\n{_defaults_table()}"
