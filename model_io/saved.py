"""What the loader returns: the inference models of one file (`SavedModels`) and their training records."""
from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Mapping

import torch
from torch import nn

from config.errors import UserInputError
from model_io.description import ModelDescription, build_with_state


@dataclass(frozen=True)
class TrainingRecord:
    """Where one trained part of a file came from (a pair has two): for the model card and for provenance."""

    task_cls: str
    global_step: int
    val_metrics: Mapping[str, Any]
    config: Mapping[str, Any]  # the resolved training config
    source: str  # the checkpoint it was read from
    code_version: str
    models: tuple[str, ...]  # the names (in `SavedModels.states`) of this part's models

    def to_dict(self) -> dict[str, Any]:
        return {
            "task_cls": self.task_cls, "global_step": self.global_step, "val_metrics": dict(self.val_metrics),
            "config": dict(self.config), "source": self.source, "code_version": self.code_version, "models": list(self.models),
        }  # fmt: skip

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainingRecord:
        return cls(
            str(data.get("task_cls")), int(data.get("global_step") or 0), dict(data.get("val_metrics") or {}),
            dict(data.get("config") or {}), str(data.get("source", "")), str(data.get("code_version", "unknown")),
            tuple(data.get("models") or ()),
        )  # fmt: skip


@dataclass(frozen=True)
class SavedModels:
    """The inference models of one file: description, weights by model name, and where they were trained."""

    description: ModelDescription
    states: Mapping[str, Mapping[str, torch.Tensor]]
    trained: tuple[TrainingRecord, ...]
    source: Path
    built: dict[str, nn.Module] = field(default_factory=dict, compare=False, repr=False)

    def build(self, name: str) -> nn.Module:
        """Model `name` rebuilt from the description with its weights loaded, in eval mode (built once)."""
        if name not in self.built:
            if name not in self.states:
                raise UserInputError(f"{self.source}: holds no weights for model '{name}' (it has {', '.join(sorted(self.states))})")
            self.built[name] = build_with_state(self.description.models[name], self.states[name], f"{self.source}: model '{name}'")
        return self.built[name]

    def only(self, role: str, what: str) -> str:
        """The name of the file's one model of `role`; an error saying what the file holds instead."""
        names = self.description.names_with_role(role)
        if len(names) != 1:
            held = ", ".join(f"{name} ({spec.role})" for name, spec in self.description.models.items())
            raise UserInputError(f"{self.source}: holds no single {what} (models: {held}); pass the file of a {what}")
        return names[0]
