"""Data-parallel training on Ray Train (TorchTrainer, DDP; gloo on CPU workers)."""

from __future__ import annotations

import logging
import os
import tempfile
from dataclasses import asdict
from pathlib import Path
from typing import Any

import torch

from models import TrainConfig, TrainData

from ..cluster import ray_session, state_dir

__all__ = ["train_on_ray"]

log = logging.getLogger("wastewatch")
_WEIGHTS = "weights.safetensors"


def _worker_loop(cfg: dict[str, Any]) -> None:
    """Runs on every Ray Train worker: build, wrap in DDP, fit, report each epoch."""
    import ray
    import ray.train
    import ray.train.torch
    from safetensors.torch import save_file

    from models import build, fit

    ctx = ray.train.get_context()
    rank, world = ctx.get_world_rank(), ctx.get_world_size()
    data: TrainData = ray.get(cfg["data"])
    config = TrainConfig(**cfg["config"])
    torch.manual_seed(config.seed)  # same initial weights everywhere (DDP also broadcasts)
    torch.set_num_threads(max(1, int(cfg.get("threads", 1))))
    model = ray.train.torch.prepare_model(build(cfg["arch"], **cfg["arch_args"]))

    def on_epoch(epoch: int, metrics: dict[str, float], _: dict[str, Any]) -> None:
        with tempfile.TemporaryDirectory() as tmp:
            checkpoint = None
            if rank == 0:
                inner = getattr(model, "module", model)
                save_file(
                    {k: v.detach().cpu().contiguous() for k, v in inner.state_dict().items()},
                    os.path.join(tmp, _WEIGHTS),
                )
                checkpoint = ray.train.Checkpoint.from_directory(tmp)
            ray.train.report({"epoch": epoch, **metrics}, checkpoint=checkpoint)

    fit(model, data, config, on_epoch=on_epoch, rank=rank, world_size=world)


def train_on_ray(
    arch: str,
    arch_args: dict[str, Any],
    data: TrainData,
    config: TrainConfig,
    workers: int,
    address: str | None = None,
    storage: str | os.PathLike[str] | None = None,
) -> tuple[dict[str, torch.Tensor], list[dict[str, float]]]:
    """Train with ``workers`` data-parallel workers; returns the final weights and the metrics
    reported by rank 0 after every epoch.

    Each worker draws its own batches (seeded by its rank) and takes ``1 / workers`` of every
    epoch's steps; DDP averages the gradients. Workers use GPUs when the cluster has them.
    """
    from ray.train import RunConfig, ScalingConfig
    from ray.train.torch import TorchTrainer
    from safetensors.torch import load_file

    storage = Path(storage or state_dir() / "ray-train").absolute()
    storage.mkdir(parents=True, exist_ok=True)
    with ray_session(address) as ray:
        gpus = int(ray.cluster_resources().get("GPU", 0))
        cpus = int(ray.cluster_resources().get("CPU", 1))
        trainer = TorchTrainer(
            _worker_loop,
            train_loop_config={
                "arch": arch,
                "arch_args": arch_args,
                "data": ray.put(data),
                "config": asdict(config),
                "threads": max(1, cpus // workers),
            },
            scaling_config=ScalingConfig(
                num_workers=workers, use_gpu=gpus >= workers, resources_per_worker={"CPU": 1}
            ),
            run_config=RunConfig(storage_path=str(storage)),
        )
        result = trainer.fit()
        if result.checkpoint is None:
            raise RuntimeError("Ray Train finished without a checkpoint")
        with result.checkpoint.as_directory() as folder:
            state = load_file(os.path.join(folder, _WEIGHTS))
        frame = result.metrics_dataframe
        history = frame.to_dict("records") if frame is not None else [dict(result.metrics or {})]
    log.info("Ray Train: %d workers, %d epochs", workers, config.epochs)
    return state, history
