"""A tiny task for the runner's tests and benchmark: a masked 1-D conv regressor on synthetic data.

Nothing here reads the data pipeline. Items are random sequences `x [C, L]` with targets
`y = tanh(W x)`, generated from `tiny.data_seed` by a local generator. The training step draws
from all three global generators (torch noise, numpy and Python jitter), so an inexact RNG restore
on resume changes the weights. `TinyGanTask` adds a critic and a second optimizer, in the order a
GAN task uses (critic first, generator output reused in the second turn).

Test hooks (`tiny:` keys): `nan_at_steps` makes those updates' loss NaN, `sigterm_at_step` sends
SIGTERM to the process during that update, `dump_dir` makes every rank write its weights and the
item ids it trained on at the end (`rank<r>.pt`).
"""
from __future__ import annotations

import os
import random
import signal
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
from torch import nn

from config.loader import config_section
from tasks.base_task import BaseTask
from tasks.logging_utils import TaskLogger


@dataclass(frozen=True)
class TinySettings:
    channels: int = 4
    hidden: int = 16
    num_train_items: int = 48
    num_valid_items: int = 8
    min_length: int = 6
    max_length: int = 24
    equal_lengths: bool = False
    data_seed: int = 0
    dropout: float = 0.1
    noise_std: float = 0.05
    nan_at_steps: tuple[int, ...] = ()
    sigterm_at_step: int | None = None
    dump_dir: str | None = None


class TinyDataset:
    """`num_items` synthetic items; `lengths` in frames; `collate_fn` pads to `[B, C, T]` with a `[B, 1, T]` mask."""

    def __init__(self, num_items: int, settings: TinySettings, seed: int) -> None:
        rng = np.random.default_rng(seed)
        weight = np.random.default_rng(settings.data_seed).normal(size=(settings.channels, settings.channels)) / 2
        if settings.equal_lengths:
            self.lengths = [settings.max_length] * num_items
        else:
            self.lengths = rng.integers(settings.min_length, settings.max_length + 1, size=num_items).tolist()
        self.inputs = [rng.normal(size=(settings.channels, n)).astype(np.float32) for n in self.lengths]
        self.targets = [np.tanh(weight @ x).astype(np.float32) for x in self.inputs]

    def __len__(self) -> int:
        return len(self.lengths)

    def __getitem__(self, index: int) -> dict[str, Any]:
        return {"x": self.inputs[index], "y": self.targets[index], "index": index}

    def collate_fn(self, items: list[dict[str, Any]]) -> dict[str, torch.Tensor]:
        longest = max(item["x"].shape[1] for item in items)
        channels = items[0]["x"].shape[0]
        x = torch.zeros(len(items), channels, longest)
        y = torch.zeros(len(items), channels, longest)
        mask = torch.zeros(len(items), 1, longest)
        for i, item in enumerate(items):
            n = item["x"].shape[1]
            x[i, :, :n] = torch.from_numpy(item["x"])
            y[i, :, :n] = torch.from_numpy(item["y"])
            mask[i, :, :n] = 1.0
        return {"x": x, "y": y, "mask": mask, "index": torch.tensor([item["index"] for item in items])}


def masked_mse(pred: torch.Tensor, target: torch.Tensor, mask: torch.Tensor) -> torch.Tensor:
    """Mean squared error over valid frames: `pred`, `target` [B, C, T], `mask` [B, 1, T]."""
    squared = (pred.float() - target) ** 2 * mask
    return squared.sum() / (mask.sum() * pred.shape[1])


class TinyTask(BaseTask):
    optimizer_names = ("main",)
    config_sections = ("tiny",)

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self.settings = config_section(config, TinySettings, "tiny")
        self.seen: list[list[int]] = []  # item ids per update, in training order
        self._val_sample: torch.Tensor | None = None

    def build_models(self) -> dict[str, nn.Module]:
        s = self.settings
        net = nn.Sequential(
            nn.Conv1d(s.channels, s.hidden, 3, padding=1), nn.GELU(), nn.Dropout(s.dropout), nn.Conv1d(s.hidden, s.channels, 1)
        )
        return {"net": net}

    def build_dataset(self, split: str) -> TinyDataset:
        sizes = {"train": self.settings.num_train_items, "valid": self.settings.num_valid_items, "test": 4}
        return TinyDataset(sizes[split], self.settings, seed=self.settings.data_seed * 10 + list(sizes).index(split))

    def _predict(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        x = batch["x"]
        if self.settings.noise_std:
            # Draw from all three global generators, so an inexact RNG restore changes the result.
            jitter = 1.0 + 0.1 * random.random() + 0.1 * float(np.random.uniform())
            x = x + self.settings.noise_std * jitter * torch.randn_like(x)
        return self.models["net"](x)

    def _poison(self, loss: torch.Tensor) -> torch.Tensor:
        if self.global_step in self.settings.nan_at_steps:
            return loss * float("nan")
        return loss

    def _maybe_signal(self) -> None:
        if self.settings.sigterm_at_step == self.global_step:
            os.kill(os.getpid(), signal.SIGTERM)

    def training_step(self, batch: dict[str, torch.Tensor], optimizer_name: str) -> dict[str, torch.Tensor]:
        self._maybe_signal()
        self.seen.append(batch["index"].tolist())
        mse = masked_mse(self._predict(batch), batch["y"], batch["mask"])
        return {"mse": self._poison(mse)}

    def validation_step(self, batch: dict[str, torch.Tensor], batch_idx: int) -> dict[str, torch.Tensor]:
        pred = self.models["net"](batch["x"])
        if batch_idx == 0:
            self._val_sample = pred[0, 0].float().cpu()
        error = (pred.float() - batch["y"]) * batch["mask"]
        # Sampling, as a VAE's validation does: it consumes the global generator.
        sampled = self.models["net"](batch["x"] + 0.1 * torch.randn_like(batch["x"]))
        return {
            "loss": masked_mse(pred, batch["y"], batch["mask"]),
            "mae": error.abs().sum() / (batch["mask"].sum() * pred.shape[1]),
            "sampled_loss": masked_mse(sampled, batch["y"], batch["mask"]),
        }

    def on_validation_end(self, logger: TaskLogger, step: int) -> None:
        if self._val_sample is not None:
            logger.add_audio("val/sample", torch.tanh(self._val_sample), sample_rate=8000, step=step)
        logger.add_text("val/note", f"validated at step {step}", step)

    def on_train_end(self) -> None:
        if self.settings.dump_dir:
            dump = {
                "models": {name: {k: v.detach().cpu() for k, v in m.state_dict().items()} for name, m in self.raw_models.items()},
                "seen": self.seen,
                "global_step": self.global_step,
            }
            torch.save(dump, Path(self.settings.dump_dir) / f"rank{self.rank}.pt")

    def infer(self, work_dir: Path) -> None:
        dataset = self.build_dataset("test")
        batch = dataset.collate_fn([dataset[i] for i in range(len(dataset))])
        pred = self.models["net"](batch["x"].to(self.device)).cpu().numpy()
        out_dir = work_dir / "infer"
        out_dir.mkdir(exist_ok=True)
        tmp = out_dir / ".predictions.npy.tmp"
        with open(tmp, "wb") as handle:
            np.save(handle, pred)
        os.replace(tmp, out_dir / "predictions.npy")


class TinyGanTask(TinyTask):
    """TinyTask plus a critic: optimizers "critic" then "net", as a GAN alternates D and G."""

    optimizer_names = ("critic", "net")

    def __init__(self, config: dict[str, Any]) -> None:
        super().__init__(config)
        self._pending: dict[int, torch.Tensor] = {}

    def build_models(self) -> dict[str, nn.Module]:
        s = self.settings
        critic = nn.Sequential(nn.Conv1d(s.channels, 8, 3, padding=1), nn.LeakyReLU(0.1), nn.Conv1d(8, 1, 1))
        return {**super().build_models(), "critic": critic}

    def _critic_mean(self, signal_: torch.Tensor, mask: torch.Tensor, target: float) -> torch.Tensor:
        scores = self.models["critic"](signal_).float()
        return (((scores - target) ** 2) * mask).sum() / mask.sum()

    def training_step(self, batch: dict[str, torch.Tensor], optimizer_name: str) -> dict[str, torch.Tensor]:
        mask = batch["mask"]
        if optimizer_name == "critic":
            self._maybe_signal()
            self.seen.append(batch["index"].tolist())
            pred = self._predict(batch)
            self._pending[id(batch)] = pred  # reused by the "net" turn of the same micro-batch
            loss = self._critic_mean(batch["y"], mask, 1.0) + self._critic_mean(pred.detach(), mask, 0.0)
            return {"critic": loss}
        pred = self._pending.pop(id(batch), None)
        if pred is None:
            pred = self._predict(batch)
        mse = masked_mse(pred, batch["y"], mask)
        adversarial = self._critic_mean(pred, mask, 1.0)
        return {"loss": self._poison(mse + 0.1 * adversarial), "mse": mse, "adversarial": adversarial}
