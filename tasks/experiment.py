"""An experiment's work dir and the config it runs with: new, resumed, or reset (docs/RUNNER.md).

`checkpoints/<exp_name>/` (root: `--work_dir_root`, else `$SVS_CHECKPOINTS_ROOT`, else
`checkpoints` relative to the current directory) holds `config.yaml`, the checkpoints, `tb/`
and `train.log`.

- New (no checkpoint yet): the `--config` file, runner defaults filled in, `--hparams` applied;
  saved as `config.yaml`.
- Resume (a checkpoint exists, no `--reset`): the saved `config.yaml`; `--hparams` may only change
  `RESUMABLE_KEYS` (the new values are saved), any other value that differs from the saved one is
  an error; a `--config` file that differs from the saved config is reported and ignored.
- `--reset`: the work dir is deleted and the run starts as new.

Planning only reads files (every rank plans the same way); `prepare_work_dir` (rank 0) writes.
"""
from __future__ import annotations

import shutil
import tempfile
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import yaml

from config.errors import UserInputError
from config.loader import apply_overrides, check_sections, load_config, parse_overrides, safe_load_strict, save_config
from preprocessor.settings import DATA_SECTIONS, check_data_sections
from tasks.base_task import BaseTask
from model_io.checkpoint_file import ROOT_ENV, checkpoints_root, work_dir_for  # noqa: F401  (ROOT_ENV: run.py's help)
from model_io.class_path import import_class
from tasks.checkpoint import latest_checkpoint, load_resumable_checkpoint, remove_stale_temporaries
from tasks.trainer_config import RUNNER_SECTIONS, RunnerConfig, fill_runner_defaults, parse_runner_config

CONFIG_NAME = "config.yaml"
#: Keys a resumed run may change with --hparams: they alter how long / how visibly it trains, never what.
RESUMABLE_KEYS = (
    "trainer.max_updates",
    "trainer.val_check_interval",
    "trainer.log_interval",
    "trainer.num_workers",
    "trainer.num_ckpt_keep",
    "trainer.max_nonfinite_streak",
)


@dataclass
class ExperimentPlan:
    """What a run will do; built without writing anything."""

    work_dir: Path
    config: dict[str, Any]
    runner: RunnerConfig
    task: BaseTask
    resume_from: Path | None  # the newest (loadable, when training) checkpoint when resuming / evaluating
    reset: bool = False
    save: bool = False  # write config.yaml (new run, or resumable keys changed)
    messages: list[str] = field(default_factory=list)
    warnings: list[str] = field(default_factory=list)
    resume_state: dict[str, Any] | None = None  # `resume_from` already loaded (training), so nothing is written before it is known to load


def _read_saved_config(path: Path) -> dict[str, Any]:
    try:
        data = safe_load_strict(path.read_bytes().decode("utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        reason = " ".join(str(error).split())
        raise UserInputError(f"{path}: cannot read the saved config ({reason}); fix it or use --reset") from None
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: the saved config is not a mapping; use --reset")
    return data


def _flat(cfg: Any, prefix: str = "") -> dict[str, Any]:
    if not isinstance(cfg, dict) or (prefix and not cfg):
        return {prefix[:-1]: cfg}
    items: dict[str, Any] = {}
    for key, value in cfg.items():
        items.update(_flat(value, f"{prefix}{key}."))
    return items


def _get(cfg: dict[str, Any], dotted: str) -> tuple[bool, Any]:
    node: Any = cfg
    for part in dotted.split("."):
        if not isinstance(node, dict) or part not in node:
            return False, None
        node = node[part]
    return True, node


def _same(old: Any, new: Any) -> bool:
    if isinstance(old, float) and isinstance(new, int) and not isinstance(new, bool):
        return old == float(new)
    return type(old) is type(new) and old == new or (old is None and new is None)


def build_task(config: dict[str, Any], source: str) -> tuple[RunnerConfig, BaseTask]:
    """Parse the runner keys, import `task_cls` and construct the task (all before anything is written)."""
    runner = parse_runner_config(config)
    cls = import_class(runner.task_cls, f"{source}: task_cls", "tasks.visinger_task.VISingerTask")
    if not issubclass(cls, BaseTask):
        raise UserInputError(f"{source}: task_cls {runner.task_cls} is not a tasks.base_task.BaseTask subclass")
    if cls.config_sections is not None:
        check_sections(config, (*RUNNER_SECTIONS, *DATA_SECTIONS, *cls.config_sections), f"{source} (task {cls.__name__})")
        check_data_sections(config)  # a task reads only dataset.binary_dir, but a typo under dataset: is still a typo
    return runner, cls(config)


def plan_training(config_path: str | None, exp_name: str, hparams: str | None, reset: bool, root: str | None = None) -> ExperimentPlan:
    """Decide new / resume / reset for `exp_name` and resolve its config (reads only)."""
    work_dir = work_dir_for(exp_name, root)
    saved_path = work_dir / CONFIG_NAME
    newest = latest_checkpoint(work_dir)
    overrides = parse_overrides(hparams) if hparams else {}
    if newest is not None and not reset:
        if not saved_path.is_file():
            raise UserInputError(f"{work_dir}: has checkpoints but no {CONFIG_NAME}; restore it, or pass --reset to start over")
        return _plan_resume(work_dir, saved_path, newest, config_path, overrides)
    if config_path is None:
        if saved_path.is_file() and not reset:
            config_path = str(saved_path)  # configured earlier, never checkpointed: start with that config
        else:
            raise UserInputError(f"--config is required: {work_dir} holds no experiment to resume")
    config = apply_overrides(fill_runner_defaults(load_config(config_path)), overrides)
    runner, task = build_task(config, str(config_path))
    plan = ExperimentPlan(work_dir, config, runner, task, resume_from=None, reset=reset and work_dir.exists(), save=True)
    if plan.reset:
        plan.messages.append(f"--reset: deleting {work_dir} and starting over from step 0")
    elif saved_path.is_file():
        plan.messages.append(f"starting {work_dir} from step 0 (it has no checkpoint yet; its {CONFIG_NAME} is replaced)")
    else:
        plan.messages.append(f"starting new experiment {work_dir}")
    return plan


def _plan_resume(work_dir: Path, saved_path: Path, newest: Path, config_path: str | None, overrides: dict[str, Any]) -> ExperimentPlan:
    saved = fill_runner_defaults(_read_saved_config(saved_path))
    changed = []
    for key, value in overrides.items():
        known, old = _get(saved, key)
        if not known or _same(old, value):
            continue  # unknown keys: apply_overrides names the closest key
        if key not in RESUMABLE_KEYS:
            raise UserInputError(
                f"--hparams: {key}={value!r} contradicts the saved config of {work_dir} ({key}={old!r}); resuming keeps the "
                f"saved config (only {', '.join(k.split('.', 1)[1] for k in RESUMABLE_KEYS)} may change) — drop it, or pass --reset"
            )
        changed.append(f"{key} {old!r} -> {value!r}")
    config = apply_overrides(saved, overrides, source="--hparams")
    runner, task = build_task(config, str(saved_path))
    resume_from, state, skipped = load_resumable_checkpoint(work_dir, newest)
    plan = ExperimentPlan(work_dir, config, runner, task, resume_from=resume_from, save=bool(changed), resume_state=state)
    plan.warnings.extend(f"{work_dir}/{line}; resuming from the previous checkpoint" for line in skipped)
    plan.messages.append(f"resuming {work_dir} from {resume_from.name} with its saved {CONFIG_NAME}")
    if changed:
        plan.messages.append(f"changed on resume: {', '.join(changed)}")
    if config_path is not None and Path(config_path).resolve() != saved_path.resolve():
        file_items = _flat(fill_runner_defaults(load_config(config_path)))
        saved_items = _flat(saved)
        differing = [k for k in sorted(set(file_items) | set(saved_items)) if file_items.get(k, "<absent>") != saved_items.get(k, "<absent>")]
        if differing:
            first = differing[0]
            more = f" and {len(differing) - 1} more" if len(differing) > 1 else ""
            plan.warnings.append(
                f"{config_path} differs from the saved {saved_path} at '{first}' (file: {file_items.get(first, '<absent>')!r}, "
                f"saved: {saved_items.get(first, '<absent>')!r}){more}; resuming with the saved config — pass --reset to train with the file"
            )
    return plan


def plan_evaluation(exp_name: str, hparams: str | None, ckpt: str | None, root: str | None = None) -> ExperimentPlan:
    """For --validate / --infer: the saved config (+ in-memory --hparams) and the checkpoint to load."""
    work_dir = work_dir_for(exp_name, root)
    saved_path = work_dir / CONFIG_NAME
    if not saved_path.is_file():
        raise UserInputError(f"{work_dir}: no experiment here (no {CONFIG_NAME}); train it first or check --exp_name / --work_dir_root")
    config = fill_runner_defaults(_read_saved_config(saved_path))
    if hparams:
        config = apply_overrides(config, parse_overrides(hparams))
    path = Path(ckpt) if ckpt else latest_checkpoint(work_dir)
    if path is None:
        raise UserInputError(f"{work_dir}: no checkpoint yet; train first, or name one with --ckpt")
    runner, task = build_task(config, str(saved_path))
    return ExperimentPlan(work_dir, config, runner, task, resume_from=path, messages=[f"{work_dir}: loading {path}"])


def prepare_work_dir(plan: ExperimentPlan) -> None:
    """Rank 0: apply --reset, create the work dir, check it is writable, save config.yaml, drop stale temporaries."""
    work_dir = plan.work_dir
    if plan.reset and work_dir.exists():
        shutil.rmtree(work_dir)
    try:
        work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryFile(dir=work_dir):
            pass
    except OSError as error:
        raise UserInputError(
            f"{work_dir}: the work dir cannot be created or written ({error.strerror or error}); fix its permissions or "
            f"choose another --work_dir_root"
        ) from None
    remove_stale_temporaries(work_dir)
    if plan.save:
        save_config(plan.config, work_dir / CONFIG_NAME)
