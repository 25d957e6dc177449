"""Optimizers and learning-rate schedules named by class path in the YAML, with a linear warm-up.

The schedule is stepped once per successful update (never per epoch): for update `u` (0-based)
the learning rate is `lr_inner * (u + 1) / warmup_updates` while `u < warmup_updates`, then the
inner scheduler (`scheduler_cls`) takes over from its first value, as if warm-up had not existed.
"""
from __future__ import annotations

from typing import Any, Iterable

import torch
from torch.optim import Optimizer
from torch.optim.lr_scheduler import LRScheduler, ReduceLROnPlateau

from config.errors import UserInputError
from model_io.class_path import import_class


def build_optimizer(
    optimizer_cls: str, optimizer_kwargs: dict[str, Any], params: Iterable[torch.nn.Parameter], where: str
) -> Optimizer:
    """`optimizer_cls(params, **optimizer_kwargs)`; bad names or arguments name `where` (e.g. "optimizers.generator")."""
    cls = import_class(optimizer_cls, f"{where}.optimizer_cls", "torch.optim.AdamW")
    if not issubclass(cls, Optimizer):
        raise UserInputError(f"{where}.optimizer_cls: {optimizer_cls} is not a torch.optim.Optimizer subclass")
    try:
        return cls(list(params), **optimizer_kwargs)
    except (TypeError, ValueError) as error:
        raise UserInputError(f"{where}.optimizer_kwargs: {optimizer_cls} rejected {optimizer_kwargs!r} ({error})") from None


class WarmupScheduler:
    """Linear warm-up over `warmup_updates`, then an optional inner `LRScheduler`; see the module docstring.

    Not an `LRScheduler` itself: it owns the inner one and only hands it control after warm-up, so
    chainable schedules (which read the current lr) never see the warm-up factor.
    """

    def __init__(self, optimizer: Optimizer, inner: LRScheduler | None, warmup_updates: int) -> None:
        if warmup_updates < 0:
            raise ValueError(f"warmup_updates must be >= 0, got {warmup_updates}")
        self.optimizer = optimizer
        self.inner = inner
        self.warmup_updates = warmup_updates
        self.updates = 0
        # The lr the inner schedule asks for at its start (the base lr without an inner schedule).
        self.inner_lrs = [float(group["lr"]) for group in optimizer.param_groups]
        if warmup_updates > 0:
            self._set_lrs(1.0 / warmup_updates)

    def _set_lrs(self, factor: float) -> None:
        for group, lr in zip(self.optimizer.param_groups, self.inner_lrs):
            group["lr"] = lr * factor

    def step(self) -> None:
        """Advance by one update (call after `optimizer.step()`)."""
        self.updates += 1
        if self.updates < self.warmup_updates:
            self._set_lrs((self.updates + 1) / self.warmup_updates)
        elif self.updates == self.warmup_updates:
            self._set_lrs(1.0)
        elif self.inner is not None:
            self.inner.step()

    def get_last_lr(self) -> list[float]:
        return [float(group["lr"]) for group in self.optimizer.param_groups]

    def state_dict(self) -> dict[str, Any]:
        return {
            "updates": self.updates,
            "warmup_updates": self.warmup_updates,
            "inner_lrs": list(self.inner_lrs),
            "inner": self.inner.state_dict() if self.inner is not None else None,
        }

    def load_state_dict(self, state: dict[str, Any]) -> None:
        """Restore the schedule position; load the optimizer first (it holds the current lr values)."""
        if (state["inner"] is None) != (self.inner is None):
            raise ValueError("the checkpoint's scheduler and the configured scheduler_cls disagree (one is absent)")
        self.updates = int(state["updates"])
        self.warmup_updates = int(state["warmup_updates"])
        self.inner_lrs = [float(lr) for lr in state["inner_lrs"]]
        if self.inner is not None:
            self.inner.load_state_dict(state["inner"])


def build_scheduler(
    optimizer: Optimizer,
    scheduler_cls: str | None,
    scheduler_kwargs: dict[str, Any],
    warmup_updates: int,
    where: str,
) -> WarmupScheduler:
    """The per-update schedule: warm-up, then `scheduler_cls(optimizer, **scheduler_kwargs)` (None: constant)."""
    inner = None
    if scheduler_cls is not None:
        cls = import_class(scheduler_cls, f"{where}.scheduler_cls", "torch.optim.lr_scheduler.ExponentialLR")
        if not issubclass(cls, LRScheduler) or issubclass(cls, ReduceLROnPlateau):
            raise UserInputError(
                f"{where}.scheduler_cls: {scheduler_cls} is not a per-update LRScheduler (ReduceLROnPlateau is not supported)"
            )
        try:
            inner = cls(optimizer, **scheduler_kwargs)
        except (TypeError, ValueError) as error:
            raise UserInputError(f"{where}.scheduler_kwargs: {scheduler_cls} rejected {scheduler_kwargs!r} ({error})") from None
    elif scheduler_kwargs:
        raise UserInputError(f"{where}.scheduler_kwargs is set but scheduler_cls is null; name a scheduler or remove the kwargs")
    return WarmupScheduler(optimizer, inner, warmup_updates)
