"""The Task interface: what a model family gives the generic trainer (`tasks/trainer.py`).

A task owns its models, losses, datasets and what it logs; the trainer owns the loop, devices,
precision, optimizers, checkpoints and processes. The trainer calls, in this order:

1. ``task = TaskCls(config)`` with the resolved config dict (the task reads its own sections;
   the runner's keys are `task_cls`, `trainer:` and `optimizers:`).
2. ``task.build_models() -> dict[str, nn.Module]``: named models ("generator", "discriminator").
   Their state is what checkpoints hold; `trainer.frozen_params` and the finetune prefixes are
   written as ``<model name>.<parameter name>``.
3. ``task.build_dataset("train")`` and ``("valid")``: `TaskDataset`s (below).
4. Per update, for each name in ``task.optimizer_names`` (in order — a GAN lists
   ``("discriminator", "generator")``): ``task.training_step(batch, name)`` on each of the
   `accumulate_grad_batches` micro-batches, backward, clip, step that optimizer.
5. Every `val_check_interval` updates, on rank 0: ``task.validation_step(batch, batch_idx)`` over
   the validation set, then ``task.on_validation_end(logger, step)``; then a checkpoint.
6. ``task.on_train_end()`` on every rank after the last update; ``task.infer(work_dir)`` for
   ``run.py --infer``.
7. At every checkpoint, ``task.model_description()``: what inference rebuilds the models from
   (`model_io.description`: per model its class, constructor arguments and role; the audio settings
   and data statistics). A task that returns None writes checkpoints that inference cannot load.

Set by the trainer before any step (read them, do not assign them):
``self.models`` (what to call: `DistributedDataParallel` wrappers of the trainable models while
training under torchrun, the plain modules during validation and inference),
``self.raw_models`` (always the plain modules: attributes, `state_dict`), ``self.device``,
``self.global_step`` (updates completed so far), ``self.rank``, ``self.world_size``.

Randomness: draw it in `training_step` / `validation_step` from the global generators (torch,
numpy, random), which the trainer seeds and checkpoints; `__getitem__` must be deterministic,
because it may run in DataLoader worker processes whose state is not checkpointed.
"""
from __future__ import annotations

import abc
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol, Sequence, runtime_checkable

import torch
from torch import nn

from config.errors import UserInputError

if TYPE_CHECKING:
    from model_io.description import ModelDescription
    from tasks.logging_utils import TaskLogger


@runtime_checkable
class TaskDataset(Protocol):
    """A map-style dataset the trainer can bucket and batch.

    ``lengths[i]`` is item i's size in frames (what `trainer.max_batch_frames` budgets; padded
    batch cost = items x longest). ``collate_fn(items)`` turns a list of ``self[i]`` into the batch
    `training_step` receives (tensors in a dict; the trainer moves every tensor in it to the device).
    """

    lengths: Sequence[int]

    def __len__(self) -> int: ...

    def __getitem__(self, index: int) -> Any: ...

    def collate_fn(self, items: list[Any]) -> Any: ...


class BaseTask(abc.ABC):
    """Subclass this and implement the abstract methods; see the module docstring for the call order."""

    #: The optimizers, in the order they step within one update; each needs an `optimizers.<name>`
    #: entry in the YAML (its `params` lists the models it updates).
    optimizer_names: tuple[str, ...] = ("main",)
    #: The top-level config sections the task reads, besides the runner's (`task_cls`, `trainer`,
    #: `optimizers`) and the data pipeline's (`audio`, `dataset`, `segment`, `preprocess`). Any other
    #: section is an error naming the closest known one (tasks/experiment.py); None: not checked.
    config_sections: tuple[str, ...] | None = None

    def __init__(self, config: dict[str, Any]) -> None:
        self.config = config
        self.models: dict[str, nn.Module] = {}
        self.raw_models: dict[str, nn.Module] = {}
        self.device = torch.device("cpu")
        self.global_step = 0
        self.rank = 0
        self.world_size = 1

    @abc.abstractmethod
    def build_models(self) -> dict[str, nn.Module]:
        """Every model of the task by name, freshly initialised (the trainer moves them to the device)."""

    @abc.abstractmethod
    def build_dataset(self, split: str) -> TaskDataset:
        """The dataset of `split` ("train", "valid", or "test" for `infer`)."""

    @abc.abstractmethod
    def training_step(self, batch: Any, optimizer_name: str) -> dict[str, torch.Tensor]:
        """Named scalar losses for the optimizer `optimizer_name` on `batch`.

        What is backpropagated: the entry "loss" when present (then the others are only logged),
        otherwise the sum of all entries. Make each loss a mean over the batch, so that gradient
        accumulation over k micro-batches equals one k-times larger batch. Return ``{}`` to skip
        this optimizer for this update (e.g. a discriminator that starts later); decide it the
        same way on every rank (from ``self.global_step``), and for the first micro-batch.

        Runs inside the trainer's autocast context. Under `accumulate_grad_batches=k`, each
        optimizer's turn sees the same k micro-batches (same objects, same order), so a GAN can
        compute the generator output in the first turn and reuse it in the second (`tasks.gan_task.GANTask`).
        """

    @abc.abstractmethod
    def validation_step(self, batch: Any, batch_idx: int) -> dict[str, torch.Tensor | float]:
        """Named scalar metrics of one validation batch (run under `torch.no_grad`, models in eval mode).

        The trainer averages each metric over items (a batch weighs its item count) and logs it as
        ``val/<name>``; `trainer.best_metric` names one of these keys. Keep samples to log (audio,
        plots) on `self` and log them in `on_validation_end`.
        """

    def on_validation_end(self, logger: TaskLogger, step: int) -> None:
        """Log audio, images or figures gathered during validation (rank 0 only)."""

    def on_train_end(self) -> None:
        """Called on every rank after the last update (and after a stop by signal)."""

    def model_description(self) -> ModelDescription | None:
        """The self-description stored in every checkpoint (`model_io.description.describe(...)`), or None."""
        return None

    def infer(self, work_dir: Path, split: str = "test") -> None:
        """`run.py --infer [--split valid|test]`: write the task's outputs for `split` under `infer_dir(work_dir, split)`
        (models loaded, eval mode, no grad)."""
        raise UserInputError(f"task {type(self).__name__} has no inference; run it without --infer")

    def infer_dir(self, work_dir: Path, split: str) -> Path:
        """Where `infer` writes: `work_dir/infer/step<N>` for the test split, `work_dir/infer_<split>/step<N>` for another."""
        return Path(work_dir) / ("infer" if split == "test" else f"infer_{split}") / f"step{self.global_step}"
