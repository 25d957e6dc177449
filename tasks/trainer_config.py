"""The runner's own config keys: `task_cls`, the `trainer:` section and the `optimizers:` section.

Everything else in a model YAML belongs to the task. Defaults are written into the resolved config
(`fill_runner_defaults`) before `--hparams` are applied, so every runner key can be overridden on the
command line and the saved `config.yaml` shows every value the run used. See docs/RUNNER.md.
"""
from __future__ import annotations

import dataclasses
from dataclasses import dataclass, field
from typing import Any

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, require_key
from inference.devices import DEVICE_NAME

PRECISIONS = ("fp32", "bf16", "fp16")


@dataclass(frozen=True)
class TrainerConfig:
    """`trainer:` — the loop, batching, checkpoints, precision, fine-tuning (docs/RUNNER.md lists each key)."""

    max_updates: int
    val_check_interval: int = 2000
    log_interval: int = 100
    seed: int = 1234
    device: str = "auto"
    precision: str = "fp32"
    deterministic: bool = False
    accumulate_grad_batches: int = 1
    grad_clip_norm: float | None = None
    max_batch_frames: int = 8000
    max_batch_size: int = 32
    shuffle: bool = True
    num_workers: int = 2
    num_sanity_val_batches: int = 1
    max_val_batches: int | None = None
    num_ckpt_keep: int = 3
    best_metric: str | None = None
    best_metric_mode: str = "min"
    max_nonfinite_streak: int = 20
    ddp_find_unused_parameters: bool = False
    finetune_ckpt_path: str | None = None
    finetune_ignored_params: tuple[str, ...] = ()
    finetune_strict_shapes: bool = True
    frozen_params: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        positive = ("max_updates", "val_check_interval", "log_interval", "accumulate_grad_batches",
                    "max_batch_frames", "max_batch_size", "num_ckpt_keep", "max_nonfinite_streak")
        for name in positive:
            if getattr(self, name) < 1:
                raise ValueError(f"{name} must be >= 1, got {getattr(self, name)}")
        for name in ("num_workers", "num_sanity_val_batches"):
            if getattr(self, name) < 0:
                raise ValueError(f"{name} must be >= 0, got {getattr(self, name)}")
        if self.max_val_batches is not None and self.max_val_batches < 1:
            raise ValueError(f"max_val_batches must be >= 1 or null, got {self.max_val_batches}")
        if self.precision not in PRECISIONS:
            raise ValueError(f"precision must be one of {', '.join(PRECISIONS)}, got {self.precision!r}")
        if not DEVICE_NAME.match(str(self.device)):  # what every CLI's --device takes
            raise ValueError(f"device must be auto, cpu, cuda or cuda:N, got {self.device!r}")
        if self.best_metric_mode not in ("min", "max"):
            raise ValueError(f"best_metric_mode must be min or max, got {self.best_metric_mode!r}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be > 0 or null, got {self.grad_clip_norm}")


@dataclass(frozen=True)
class OptimizerConfig:
    """One entry of `optimizers:` — what updates which models, with which schedule."""

    optimizer_cls: str = "torch.optim.AdamW"
    optimizer_kwargs: dict[str, Any] = field(default_factory=dict)
    params: tuple[str, ...] | None = None  # model names; null = every model (single optimizer only)
    scheduler_cls: str | None = None
    scheduler_kwargs: dict[str, Any] = field(default_factory=dict)
    warmup_updates: int = 0
    grad_clip_norm: float | None = None  # null: trainer.grad_clip_norm

    def __post_init__(self) -> None:
        if self.warmup_updates < 0:
            raise ValueError(f"warmup_updates must be >= 0, got {self.warmup_updates}")
        if self.grad_clip_norm is not None and self.grad_clip_norm <= 0:
            raise ValueError(f"grad_clip_norm must be > 0 or null, got {self.grad_clip_norm}")


RUNNER_SECTIONS = ("task_cls", "trainer", "optimizers")


@dataclass(frozen=True)
class RunnerConfig:
    """The parsed runner keys of a resolved config."""

    task_cls: str
    trainer: TrainerConfig
    optimizers: dict[str, OptimizerConfig]


def _defaults(cls: type) -> dict[str, Any]:
    """The YAML form of a dataclass's defaults (tuples as lists, as `yaml.safe_dump` needs)."""
    values: dict[str, Any] = {}
    for f in dataclasses.fields(cls):
        if f.default is not dataclasses.MISSING:
            value = f.default
        elif f.default_factory is not dataclasses.MISSING:
            value = f.default_factory()
        else:
            continue
        values[f.name] = list(value) if isinstance(value, tuple) else value
    return values


def fill_runner_defaults(cfg: dict[str, Any]) -> dict[str, Any]:
    """A copy of `cfg` with every missing `trainer.*` and `optimizers.<name>.*` key set to its default."""
    cfg = dict(cfg)
    trainer = cfg.get("trainer")
    if trainer is None:
        trainer = {}
    if isinstance(trainer, dict):
        cfg["trainer"] = {**_defaults(TrainerConfig), **trainer}
    optimizers = cfg.get("optimizers")
    if isinstance(optimizers, dict):
        cfg["optimizers"] = {
            name: {**_defaults(OptimizerConfig), **entry} if isinstance(entry, dict) else entry
            for name, entry in optimizers.items()
        }
    return cfg


def parse_runner_config(cfg: dict[str, Any]) -> RunnerConfig:
    """Check and type the runner keys; a missing or bad key raises `UserInputError` naming it."""
    task_cls = require_key(cfg, "task_cls")
    trainer = config_section(cfg, TrainerConfig, "trainer")
    sections = require_key(cfg, "optimizers")
    if not isinstance(sections, dict) or not sections:
        raise UserInputError("config: 'optimizers' must map optimizer names to settings, e.g. optimizers: {main: {optimizer_cls: torch.optim.AdamW}}")
    optimizers = {str(name): build_dataclass(OptimizerConfig, entry, f"optimizers.{name}") for name, entry in sections.items()}
    return RunnerConfig(task_cls=task_cls, trainer=trainer, optimizers=optimizers)
