"""The generic training loop: any `BaseTask`, one process or many (`torchrun`), resumable exactly.

One update = for each optimizer in `task.optimizer_names` order: zero its gradients, run
`training_step` + backward on each of the `accumulate_grad_batches` micro-batches (loss divided by
their count), unscale (fp16), clip / measure the gradient norm, step it and its schedule. An update
whose loss or gradient norm is not finite (on any rank) is skipped for that optimizer, counted and
logged; `max_nonfinite_streak` skipped updates in a row stop the run (`NonFiniteLossError`).

Exact resume: the checkpoint holds weights, optimizer/schedule/grad-scaler states, the step, the
data position (epoch + batches consumed in it) and every rank's RNG states, and validation runs on
its own seeded random stream; so N updates, a stop, and N more equal 2N updates in one go (same
world size, deterministic kernels). Validation, checkpoints and logs happen on rank 0 only.
"""
from __future__ import annotations

import contextlib
import logging
import math
import os
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterator

import torch
from torch import nn
from torch.nn.parallel import DistributedDataParallel
from tqdm import tqdm

from config.errors import UserInputError
from tasks.base_task import BaseTask
from tasks.batches import BatchStream, check_dataset, make_loader, move_to_device
from tasks.checkpoint import (
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    atomic_torch_save,
    checkpoint_name,
    code_version,
    first_state_mismatch,
    flat_model_states,
    load_checkpoint,
    prune_checkpoints,
    load_resumable_checkpoint,
    publish_best,
)
from model_io.class_path import class_path
from tasks.distributed import DistContext, any_rank, average_gradients, barrier, gather_to_main
from tasks.finetune import freeze_parameters, load_finetune_weights
from tasks.logging_utils import TaskLogger, format_metrics
from tasks.optim import WarmupScheduler, build_optimizer, build_scheduler
from tasks.rng import capture_rng_state, derive_seed, isolated_rng, restore_rng_state, seed_everything
from tasks.samplers import BucketBatchSampler
from tasks.stop_signal import StopRequest
from tasks.trainer_config import RunnerConfig

_AMP_DTYPES = {"fp32": None, "bf16": torch.bfloat16, "fp16": torch.float16}


class NonFiniteLossError(RuntimeError):
    """Too many consecutive updates with a non-finite loss or gradient: the run has diverged."""


@dataclass
class _TurnResult:
    """One optimizer's part of an update: logged losses (detached), gradient norm, whether it was skipped."""

    losses: dict[str, torch.Tensor]
    grad_norm: torch.Tensor
    skipped: bool


class Trainer:
    """Runs a task: `fit` (train, resuming from a checkpoint), `validate_checkpoint`, `infer_checkpoint`."""

    def __init__(
        self,
        task: BaseTask,
        runner: RunnerConfig,
        config: dict[str, Any],
        work_dir: Path,
        ctx: DistContext,
        log: logging.Logger,
    ) -> None:
        self.task = task
        self.runner = runner
        self.cfg = runner.trainer
        self.config = config
        self.work_dir = work_dir
        self.ctx = ctx
        self.device = ctx.device
        self.log = log
        self.task_name = type(task).__name__
        self.amp_dtype = _AMP_DTYPES[self.cfg.precision]
        self.logger = TaskLogger(work_dir / "tb" if ctx.is_main else None)
        self.global_step = 0
        self.epoch = 0
        self.batch_in_epoch = 0
        self.best_value: float | None = None
        self.best_step: int | None = None
        self.nonfinite_total = 0
        self.nonfinite_streak = 0
        self.last_val_metrics: dict[str, float] = {}
        self.raw_models: dict[str, nn.Module] = {}
        self.train_models: dict[str, nn.Module] = {}
        self.optimizers: dict[str, torch.optim.Optimizer] = {}
        self.schedulers: dict[str, WarmupScheduler] = {}
        self.scalers: dict[str, torch.amp.GradScaler] = {}
        self.params: dict[str, list[nn.Parameter]] = {}
        self.clip_norms: dict[str, float | None] = {}
        self._manual_grad_sync = False

    # ------------------------------------------------------------------ building
    def build_models(self) -> None:
        """Seeded model construction (identical on every rank), freezing, placement on the device."""
        if self.cfg.deterministic:
            os.environ.setdefault("CUBLAS_WORKSPACE_CONFIG", ":4096:8")  # read when cuBLAS starts; required by the flag below
            torch.use_deterministic_algorithms(True)
            torch.backends.cudnn.benchmark = False
        seed_everything(self.cfg.seed)
        models = self.task.build_models()
        if not isinstance(models, dict) or not models:
            raise TypeError(f"{self.task_name}.build_models() must return a non-empty dict of named nn.Modules")
        for name, model in models.items():
            if not isinstance(model, nn.Module) or not isinstance(name, str) or not name.isidentifier():
                raise TypeError(f"{self.task_name}.build_models(): entry {name!r} must be an nn.Module under an identifier name")
        if self.cfg.frozen_params:
            frozen = freeze_parameters(models, self.cfg.frozen_params)
            self.log.info("frozen: %d parameter tensors under %s", len(frozen), ", ".join(self.cfg.frozen_params))
        self.raw_models = {name: model.to(self.device) for name, model in models.items()}
        self.train_models = dict(self.raw_models)
        self.task.raw_models = self.raw_models
        self.task.models = self.raw_models
        self.task.device = self.device
        self.task.rank = self.ctx.rank
        self.task.world_size = self.ctx.world_size

    def build_optimizers(self) -> None:
        """One optimizer + schedule (+ fp16 grad scaler) per `task.optimizer_names` entry, over its models."""
        names = tuple(self.task.optimizer_names)
        configured = self.runner.optimizers
        for name in names:
            if name not in configured:
                raise UserInputError(
                    f"config: task {self.task_name} steps optimizers ({', '.join(names)}) but 'optimizers.{name}' is missing; add it"
                )
        for name in configured:
            if name not in names:
                raise UserInputError(
                    f"config: 'optimizers.{name}' is not an optimizer of task {self.task_name} (it has: {', '.join(names)}); remove or rename it"
                )
        owner: dict[str, str] = {}
        for name in names:
            spec = configured[name]
            where = f"optimizers.{name}"
            if spec.params is None:
                if len(names) > 1:
                    raise UserInputError(f"config: '{where}.params' is required when a task has several optimizers; list its models")
                model_names: tuple[str, ...] = tuple(self.raw_models)
            else:
                model_names = spec.params
            for model_name in model_names:
                if model_name not in self.raw_models:
                    raise UserInputError(
                        f"config: '{where}.params' names model '{model_name}', which task {self.task_name} does not build "
                        f"(its models: {', '.join(self.raw_models)})"
                    )
                if model_name in owner:
                    raise UserInputError(f"config: model '{model_name}' is in both optimizers.{owner[model_name]}.params and {where}.params")
                owner[model_name] = name
            params = [p for m in model_names for p in self.raw_models[m].parameters() if p.requires_grad]
            if not params:
                raise UserInputError(f"config: '{where}' has no trainable parameters (its models are frozen); remove it or unfreeze")
            optimizer = build_optimizer(spec.optimizer_cls, spec.optimizer_kwargs, params, where)
            self.optimizers[name] = optimizer
            self.schedulers[name] = build_scheduler(optimizer, spec.scheduler_cls, spec.scheduler_kwargs, spec.warmup_updates, where)
            self.params[name] = params
            self.clip_norms[name] = spec.grad_clip_norm if spec.grad_clip_norm is not None else self.cfg.grad_clip_norm
            if self.cfg.precision == "fp16":
                self.scalers[name] = torch.amp.GradScaler(self.device.type)
        for model_name, model in self.raw_models.items():
            if model_name not in owner and any(p.requires_grad for p in model.parameters()):
                raise UserInputError(
                    f"config: model '{model_name}' has trainable parameters but no optimizer lists it; add it to an "
                    f"optimizers.<name>.params or freeze it with trainer.frozen_params"
                )

    def _wrap_for_ddp(self) -> None:
        """Wrap each model that trains in DistributedDataParallel (each separately: GANs call them separately)."""
        if not self.ctx.is_distributed:
            return
        device_ids = [self.device.index] if self.device.type == "cuda" else None
        for name, model in self.raw_models.items():
            if any(p.requires_grad for p in model.parameters()):
                self.train_models[name] = DistributedDataParallel(
                    model, device_ids=device_ids, find_unused_parameters=self.cfg.ddp_find_unused_parameters
                )
        self.task.models = self.train_models

    def _build_train_data(self) -> None:
        dataset = check_dataset(self.task.build_dataset("train"), "train", self.task_name)
        self.sampler = BucketBatchSampler(
            dataset.lengths, self.cfg.max_batch_frames, self.cfg.max_batch_size, shuffle=self.cfg.shuffle,
            seed=self.cfg.seed, num_replicas=self.ctx.world_size, rank=self.ctx.rank,
        )
        if self.sampler.batches_per_epoch == 0:
            raise UserInputError(
                f"task {self.task_name}: the 'train' split makes fewer batches than the {self.ctx.world_size} processes; "
                "use fewer processes or smaller trainer.max_batch_frames / max_batch_size"
            )
        if self.sampler.num_oversized:
            self.log.warning("%d training items are longer than trainer.max_batch_frames=%d; each forms a batch of its own",
                             self.sampler.num_oversized, self.cfg.max_batch_frames)
        self.train_loader = make_loader(
            dataset, self.sampler, self.cfg.num_workers, self.device.type == "cuda",
            derive_seed(self.cfg.seed, "loader", self.ctx.rank), persistent=True,
        )

    def _build_valid_data(self) -> None:
        """Validation data (rank 0 only): unshuffled buckets, at most `max_val_batches`."""
        if not self.ctx.is_main:
            return
        dataset = check_dataset(self.task.build_dataset("valid"), "valid", self.task_name)
        batches = BucketBatchSampler(dataset.lengths, self.cfg.max_batch_frames, self.cfg.max_batch_size, shuffle=False,
                                     seed=self.cfg.seed).epoch_batches(0)
        self.val_batches = batches[: self.cfg.max_val_batches] if self.cfg.max_val_batches else batches
        self.val_loader = make_loader(dataset, self.val_batches, self.cfg.num_workers, self.device.type == "cuda",
                                      derive_seed(self.cfg.seed, "valid_loader"), persistent=False)

    # ------------------------------------------------------------------ checkpoints
    def _load_model_states(self, state: dict[str, Any], path: Path) -> None:
        if state.get("task_cls") != self.runner.task_cls:
            raise UserInputError(f"{path}: checkpoint of task {state.get('task_cls')}, but this run is {self.runner.task_cls}; use --reset or another --exp_name")
        found = {f"{m}.{k}": v for m, sd in state["models"].items() for k, v in sd.items()}
        mismatch = first_state_mismatch(flat_model_states(self.raw_models), found)
        if mismatch:
            raise UserInputError(f"{path}: checkpoint from another model: {mismatch}; use --reset or another --exp_name")
        for name, model in self.raw_models.items():
            model.load_state_dict(state["models"][name])

    def _load_training_state(self, state: dict[str, Any], path: Path) -> None:
        """Optimizers, schedules, scalers, counters, data position and RNG, from a checkpoint of this run."""
        for kind, objects in (("optimizers", self.optimizers), ("schedulers", self.schedulers), ("grad_scalers", self.scalers)):
            saved = state.get(kind) or {}
            if set(saved) != set(objects):
                raise UserInputError(f"{path}: the checkpoint has {kind} {sorted(saved)} but this run has {sorted(objects)}; use --reset")
            for name, obj in objects.items():
                try:
                    obj.load_state_dict(saved[name])
                except (ValueError, KeyError, RuntimeError) as error:
                    raise UserInputError(f"{path}: cannot restore {kind}.{name} ({error}); use --reset") from None
        self.global_step = int(state["global_step"])
        self.epoch, self.batch_in_epoch = int(state["epoch"]), int(state["batch_in_epoch"])
        if int(state["batches_per_epoch"]) != self.sampler.batches_per_epoch:
            self.log.warning("the training data or batching changed since the checkpoint (%d batches per epoch, now %d): "
                             "continuing from the start of the next epoch", state["batches_per_epoch"], self.sampler.batches_per_epoch)
            self.epoch, self.batch_in_epoch = self.epoch + 1, 0
        best = state["best"]
        self.best_value, self.best_step = best["value"], best["step"]
        self.nonfinite_total = int(state["nonfinite_skipped"])
        self.last_val_metrics = dict(state.get("val_metrics") or {})
        rng_states = state["rng"]
        if len(rng_states) == self.ctx.world_size:
            restore_rng_state(rng_states[self.ctx.rank], self.device)
        else:
            self.log.warning("the checkpoint was written by %d processes, this run has %d: random streams and data "
                             "order are re-seeded, so the run continues but not bit-exactly", len(rng_states), self.ctx.world_size)
            seed_everything(derive_seed(self.cfg.seed, "train", self.ctx.rank, self.global_step))

    def checkpoint_state(self, rng_states: list[dict[str, Any]]) -> dict[str, Any]:
        """Everything a checkpoint holds (plain types and tensors; see tasks/checkpoint.py)."""
        return {
            "format": CHECKPOINT_FORMAT,
            "format_version": CHECKPOINT_FORMAT_VERSION,
            "code_version": code_version(),
            "torch_version": str(torch.__version__),  # TorchVersion itself is not weights_only-loadable
            "task_cls": self.runner.task_cls,
            "config": self.config,
            "model_classes": {name: class_path(model) for name, model in self.raw_models.items()},
            **({"description": description.to_dict()} if (description := self.task.model_description()) is not None else {}),
            "models": {name: model.state_dict() for name, model in self.raw_models.items()},
            "optimizers": {name: opt.state_dict() for name, opt in self.optimizers.items()},
            "schedulers": {name: sched.state_dict() for name, sched in self.schedulers.items()},
            "grad_scalers": {name: scaler.state_dict() for name, scaler in self.scalers.items()},
            "global_step": self.global_step,
            "epoch": self.epoch,
            "batch_in_epoch": self.batch_in_epoch,
            "batches_per_epoch": self.sampler.batches_per_epoch,
            "world_size": self.ctx.world_size,
            "rng": rng_states,
            "best": {"metric": self.cfg.best_metric, "mode": self.cfg.best_metric_mode, "value": self.best_value, "step": self.best_step},
            "nonfinite_skipped": self.nonfinite_total,
            "val_metrics": dict(self.last_val_metrics),
        }

    def save_checkpoint(self, improved: bool) -> Path | None:
        """Collective: gather RNG states, rank 0 writes `model_ckpt_steps_<step>.pt` (+ best), prunes, all wait."""
        rng_states = gather_to_main(self.ctx, capture_rng_state(self.device))
        path = None
        if self.ctx.is_main:
            assert rng_states is not None
            path = self.work_dir / checkpoint_name(self.global_step)
            atomic_torch_save(self.checkpoint_state(rng_states), path)
            if improved:
                publish_best(path, self.work_dir)
            prune_checkpoints(self.work_dir, self.cfg.num_ckpt_keep)
            self.log.info("step %d: checkpoint %s%s", self.global_step, path.name, " (new best)" if improved else "")
        barrier(self.ctx)
        return path

    # ------------------------------------------------------------------ validation
    @contextlib.contextmanager
    def _eval_mode(self) -> Iterator[None]:
        """Plain modules in eval mode (never the DDP wrappers: rank 0 runs this alone)."""
        self.task.models = self.raw_models
        for model in self.raw_models.values():
            model.eval()
        try:
            yield
        finally:
            for model in self.raw_models.values():
                model.train()
            self.task.models = self.train_models

    def _autocast(self) -> contextlib.AbstractContextManager:
        if self.amp_dtype is None:
            return contextlib.nullcontext()
        return torch.autocast(device_type=self.device.type, dtype=self.amp_dtype)

    def validate(self, max_batches: int | None = None, report: bool = True) -> dict[str, float]:
        """Item-weighted mean of each `validation_step` metric (rank 0); logs `val/*` and calls the hook when `report`."""
        sums: dict[str, float] = {}
        items: dict[str, int] = {}
        self.task.global_step = self.global_step
        with self._eval_mode(), isolated_rng(derive_seed(self.cfg.seed, "valid"), self.device), torch.no_grad():
            for batch_idx, (indices, batch) in enumerate(zip(self.val_batches, self.val_loader)):
                if max_batches is not None and batch_idx >= max_batches:
                    break
                with self._autocast():
                    metrics = self.task.validation_step(move_to_device(batch, self.device, non_blocking=True), batch_idx)
                if not isinstance(metrics, dict):
                    raise TypeError(f"{self.task_name}.validation_step must return a dict of scalar metrics, got {type(metrics).__name__}")
                for name, value in metrics.items():
                    value = torch.as_tensor(value)
                    if value.numel() != 1:
                        raise TypeError(f"{self.task_name}.validation_step: metric {name!r} must be a scalar, got shape {list(value.shape)}")
                    sums[name] = sums.get(name, 0.0) + float(value) * len(indices)
                    items[name] = items.get(name, 0) + len(indices)
            result = {name: sums[name] / items[name] for name in sums}
            if self.cfg.best_metric is not None and self.cfg.best_metric not in result:
                raise UserInputError(
                    f"config: trainer.best_metric '{self.cfg.best_metric}' is not a validation metric of task {self.task_name} "
                    f"(it returns: {', '.join(result) or 'nothing'})"
                )
            if report:
                self.logger.add_scalars(result, self.global_step, prefix="val/")
                self.task.on_validation_end(self.logger, self.global_step)
                self.logger.flush()
                self.log.info("step %d: validation %s", self.global_step, format_metrics(result))
        return result

    def _improves_best(self, metrics: dict[str, float]) -> bool:
        if self.cfg.best_metric is None:
            return False
        value = metrics[self.cfg.best_metric]
        if not math.isfinite(value):
            return False
        better = self.best_value is None or (value < self.best_value if self.cfg.best_metric_mode == "min" else value > self.best_value)
        if better:
            self.best_value, self.best_step = value, self.global_step
        return better

    def _validate_and_checkpoint(self) -> None:
        improved = False
        if self.ctx.is_main:
            self.last_val_metrics = self.validate()
            improved = self._improves_best(self.last_val_metrics)
        barrier(self.ctx)
        self.save_checkpoint(improved)

    # ------------------------------------------------------------------ training
    def _no_sync(self) -> contextlib.ExitStack:
        """Skip the DDP gradient all-reduce (for all but the last micro-batch of an accumulation)."""
        stack = contextlib.ExitStack()
        for model in self.train_models.values():
            if isinstance(model, DistributedDataParallel):
                stack.enter_context(model.no_sync())
        return stack

    def _turn(self, name: str, micro_batches: list[Any]) -> _TurnResult | None:
        """Optimizer `name`'s part of one update; None when the task skipped it (returned {})."""
        optimizer, scaler = self.optimizers[name], self.scalers.get(name)
        params = self.params[name]
        optimizer.zero_grad(set_to_none=True)
        count = len(micro_batches)
        logged: dict[str, torch.Tensor] = {}
        total: torch.Tensor | None = None
        for index, batch in enumerate(micro_batches):
            sync = index == count - 1 and not self._manual_grad_sync
            with (contextlib.nullcontext() if sync else self._no_sync()), self._autocast():
                losses = self.task.training_step(batch, name)
            if not losses:
                if index == 0:
                    return None
                raise RuntimeError(f"{self.task_name}.training_step({name!r}) returned {{}} for micro-batch {index} but not for the first")
            loss = losses["loss"] if "loss" in losses else sum(losses.values())
            if not isinstance(loss, torch.Tensor) or loss.numel() != 1 or not loss.requires_grad:
                raise TypeError(f"{self.task_name}.training_step({name!r}) must return scalar loss tensors that require grad")
            if count > 1:
                loss = loss / count
            with (contextlib.nullcontext() if sync else self._no_sync()):
                (scaler.scale(loss) if scaler is not None else loss).backward()
            for key, value in losses.items():
                value = value.detach().float() / count
                logged[key] = logged[key] + value if key in logged else value
            total = loss.detach().float() if total is None else total + loss.detach().float()
        assert total is not None
        if self._manual_grad_sync:
            average_gradients(self.ctx, params)
        if scaler is not None:
            scaler.unscale_(optimizer)
        clip = self.clip_norms[name]
        if clip is not None:
            grad_norm = torch.nn.utils.clip_grad_norm_(params, clip)
        else:
            grad_norm = torch.nn.utils.get_total_norm([p.grad for p in params if p.grad is not None])
        bad = ~torch.isfinite(total)
        if scaler is None:  # with fp16 the scaler handles inf/nan gradients itself (skips and lowers the scale)
            bad = bad | ~torch.isfinite(grad_norm.to(total.device))
        skipped = any_rank(self.ctx, bad)
        if skipped:
            optimizer.zero_grad(set_to_none=True)
            if scaler is not None:
                scaler.update()
        else:
            if scaler is not None:
                scaler.step(optimizer)
                scaler.update()
            else:
                optimizer.step()
            self.schedulers[name].step()
        return _TurnResult(logged, grad_norm.detach(), skipped)

    def _handle_nonfinite(self, skipped_by: list[str]) -> None:
        if not skipped_by:
            self.nonfinite_streak = 0
            return
        self.nonfinite_total += 1
        self.nonfinite_streak += 1
        self.log.warning("step %d: non-finite loss or gradient for %s; update skipped (%d in a row, %d in all)",
                         self.global_step, ", ".join(skipped_by), self.nonfinite_streak, self.nonfinite_total)
        if self.nonfinite_streak >= self.cfg.max_nonfinite_streak:
            raise NonFiniteLossError(
                f"training stopped at step {self.global_step}: {self.nonfinite_streak} updates in a row had a non-finite loss "
                f"or gradient (trainer.max_nonfinite_streak={self.cfg.max_nonfinite_streak}); lower the learning rate, set "
                "trainer.grad_clip_norm or check the data, then resume from the last checkpoint or --reset"
            )

    def fit(self, resume_from: Path | None, resume_state: dict[str, Any] | None = None) -> int:
        """Train to `max_updates` (from `resume_from` when given); 0 when finished or stopped by a signal.

        resume_state: `resume_from` already loaded (tasks/experiment.py does, before anything is written);
        else it is loaded here, falling back past unreadable newer checkpoints (reported).
        """
        self.build_models()
        self.build_optimizers()
        self._build_train_data()
        self._build_valid_data()
        if resume_from is not None:
            state = resume_state
            if state is None:
                resume_from, state, skipped = load_resumable_checkpoint(self.work_dir, resume_from)
                for line in skipped:
                    self.log.warning("warning: %s/%s; resuming from the previous checkpoint", self.work_dir, line)
            self._load_model_states(state, resume_from)
            self._load_training_state(state, resume_from)
            self.log.info("resumed from %s: step %d, epoch %d (batch %d)", resume_from.name, self.global_step, self.epoch, self.batch_in_epoch)
        else:
            if self.cfg.finetune_ckpt_path:
                report = load_finetune_weights(self.raw_models, Path(self.cfg.finetune_ckpt_path), self.cfg.finetune_ignored_params,
                                               self.cfg.finetune_strict_shapes, self.log)
                self.log.info("finetune: loaded %d tensors from %s (%d ignored, %d kept at init, %d unused in the checkpoint)",
                              report.loaded, self.cfg.finetune_ckpt_path, report.ignored, len(report.kept_init), report.unused)
            seed_everything(derive_seed(self.cfg.seed, "train", self.ctx.rank))
        self._wrap_for_ddp()
        # DDP reduces a module's gradients in the first backward after a synchronised forward. A GAN
        # reuses the generator output of its first turn in the second; with several micro-batches per
        # turn those forwards and backwards no longer pair up, and DDP would reduce one micro-batch
        # and silently skip the rest. Then every pass runs under no_sync and gradients are averaged
        # explicitly after each turn (correct for any call pattern, at the cost of overlap).
        self._manual_grad_sync = (
            self.ctx.is_distributed and len(self.task.optimizer_names) > 1 and self.cfg.accumulate_grad_batches > 1
        )
        if self.global_step >= self.cfg.max_updates:
            self.log.info("already trained to step %d (trainer.max_updates=%d); raise it with --hparams to train further",
                          self.global_step, self.cfg.max_updates)
            return 0
        if self.ctx.is_main and self.cfg.num_sanity_val_batches:
            self.validate(max_batches=self.cfg.num_sanity_val_batches, report=False)
        barrier(self.ctx)
        for model in self.raw_models.values():
            model.train()
        return self._train_loop()

    def _train_loop(self) -> int:
        cfg = self.cfg
        stream = BatchStream(self.train_loader, self.sampler, self.epoch, self.batch_in_epoch)
        names = tuple(self.task.optimizer_names)
        prefix = {name: (f"{name}/" if len(names) > 1 else "") for name in names}
        sums: dict[str, torch.Tensor] = {}  # per-tag loss sums over the current log window
        counts: dict[str, int] = {}
        norms: dict[str, torch.Tensor] = {}  # the latest gradient norm of each optimizer
        window_updates, window_start = 0, time.perf_counter()
        bar = tqdm(total=cfg.max_updates, initial=self.global_step, disable=not self.ctx.is_main or None,
                   dynamic_ncols=True, desc="train", file=sys.stderr)
        non_blocking = self.device.type == "cuda"
        try:
            with StopRequest(self.log) as stop:
                while self.global_step < cfg.max_updates:
                    micro_batches = [stream.next() for _ in range(cfg.accumulate_grad_batches)]
                    if self.device.type != "cpu":
                        micro_batches = [move_to_device(b, self.device, non_blocking) for b in micro_batches]
                    self.task.global_step = self.global_step
                    skipped_by = []
                    for name in names:
                        result = self._turn(name, micro_batches)
                        if result is None:
                            continue
                        if result.skipped:
                            skipped_by.append(name)
                            continue
                        for key, value in result.losses.items():
                            tag = prefix[name] + key
                            sums[tag] = sums[tag] + value if tag in sums else value
                            counts[tag] = counts.get(tag, 0) + 1
                        norms[name] = result.grad_norm
                    self.global_step += 1
                    self.epoch, self.batch_in_epoch = stream.epoch, stream.batch_in_epoch
                    self._handle_nonfinite(skipped_by)
                    window_updates += 1
                    bar.update(1)
                    if self.ctx.is_main and self.global_step % cfg.log_interval == 0:
                        self._log_window(sums, counts, norms, window_updates, time.perf_counter() - window_start, bar)
                        sums, counts, norms, window_updates, window_start = {}, {}, {}, 0, time.perf_counter()
                    stopping = any_rank(self.ctx, torch.tensor(stop.requested)) if self.ctx.is_distributed else stop.requested
                    if stopping:
                        path = self.save_checkpoint(improved=False)
                        self.log.info("stopped by %s at step %d; checkpoint %s written; run the same command to resume",
                                      stop.signal_name or "signal", self.global_step, path or "(rank 0)")
                        break
                    if self.global_step % cfg.val_check_interval == 0 or self.global_step == cfg.max_updates:
                        self._validate_and_checkpoint()
                        window_start = time.perf_counter()  # steps/s measures training only
        finally:
            bar.close()
            self.logger.flush()
        self.task.global_step = self.global_step
        self.task.on_train_end()
        if self.global_step >= cfg.max_updates:
            self.log.info("finished: step %d%s", self.global_step,
                          f", best {cfg.best_metric} {self.best_value:.4g} at step {self.best_step}" if self.best_value is not None else "")
        return 0

    def _log_window(self, sums: dict[str, torch.Tensor], counts: dict[str, int], norms: dict[str, torch.Tensor],
                    updates: int, seconds: float, bar: tqdm) -> None:
        """Averages over the last `log_interval` updates to TensorBoard, train.log and the progress bar."""
        tensors = [*sums.values(), *norms.values()]
        values = torch.stack([t.float() for t in tensors]).tolist() if tensors else []  # one device sync
        scalars = {key: value / counts[key] for key, value in zip(sums, values)}
        scalars.update({f"grad_norm/{name}": value for name, value in zip(norms, values[len(sums):])})
        for name, optimizer in self.optimizers.items():
            scalars[f"lr/{name}"] = float(optimizer.param_groups[0]["lr"])
        scalars["steps_per_sec"] = updates / max(seconds, 1e-9)
        scalars["nonfinite_skipped"] = float(self.nonfinite_total)
        for name, scaler in self.scalers.items():
            scalars[f"loss_scale/{name}"] = float(scaler.get_scale())
        self.logger.add_scalars(scalars, self.global_step, prefix="train/")
        self.log.debug("step %d | epoch %d | %s", self.global_step, self.epoch, format_metrics(scalars))
        bar.set_postfix_str(format_metrics({key: scalars[key] for key in list(sums)[:4]}), refresh=False)

    # ------------------------------------------------------------------ evaluation entry points
    def _load_for_eval(self, path: Path) -> None:
        self.build_models()
        state = load_checkpoint(path)
        self._load_model_states(state, path)
        self.global_step = int(state["global_step"])
        self.task.global_step = self.global_step

    def validate_checkpoint(self, path: Path) -> dict[str, float]:
        """`run.py --validate`: the validation metrics of the weights in `path` (logged at its step)."""
        self._load_for_eval(path)
        self._build_valid_data()
        return self.validate() if self.ctx.is_main else {}

    def infer_checkpoint(self, path: Path, split: str = "test") -> None:
        """`run.py --infer`: `task.infer(work_dir, split)` with the weights of `path`, eval mode, no gradients."""
        self._load_for_eval(path)
        with self._eval_mode(), isolated_rng(derive_seed(self.cfg.seed, "infer"), self.device), torch.no_grad():
            # The test split is the default of every task's `infer`, also of one written before `split` existed.
            self.task.infer(self.work_dir) if split == "test" else self.task.infer(self.work_dir, split=split)

    def close(self) -> None:
        self.logger.close()
