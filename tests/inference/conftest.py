"""Fixtures of the inference tests: a tiny VISinger saved as a runner experiment, and the CLI as a subprocess.

The generator is built exactly as training builds it (`generator_config_from` on a config loaded
from `config/models/visinger_demo.yaml` with `--hparams`-style overrides that shrink it), and saved
in the layout `Trainer.checkpoint_state` writes, so loading goes through the real code path.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import soundfile as sf
import torch

from config.loader import config_section, load_config
from model_io.class_path import import_class
from modules.discriminators import VISingerDiscriminator
from modules.visinger import VISingerGenerator
from preprocessor.text.korean import KoreanFrontend
from tasks.checkpoint import CHECKPOINT_FORMAT, CHECKPOINT_FORMAT_VERSION, checkpoint_name
from tasks.visinger_task import DiscriminatorSettings, generator_config_from

REPO_ROOT = Path(__file__).resolve().parents[2]
CLI = REPO_ROOT / "inference" / "visinger.py"
SANCHAEK = REPO_ROOT / "data" / "examples" / "sanchaek.mid"
VISINGER_TASK = "tasks.visinger_task.VISingerTask"

# Every part of the model, a few thousand weights each: a 15 s song renders in well under a second.
TINY_OVERRIDES = (
    "model.hidden_channels=16,model.inter_channels=8,model.filter_channels=32,model.n_layers=1,model.kernel_size=3,"
    "model.window_size=2,model.prior_n_layers=1,model.posterior_n_layers=2,model.posterior_kernel_size=3,"
    "model.flow_n_layers=1,model.flow_n_flows=2,model.flow_kernel_size=3,model.upsample_initial_channel=16,"
    "model.resblock_kernel_sizes=[3],model.resblock_dilation_sizes=[[1]],discriminator.max_channels=8"
)
# The trained note range recorded by binarization (data/binary/<name>/f0_stats.json).
F0_STATS = {"log_f0_mean": 5.9, "log_f0_std": 0.2, "voiced_frames": 100, "note_pitch_min": 60, "note_pitch_max": 74}


def tiny_config(binary_dir: Path, extra_overrides: str = "") -> dict[str, Any]:
    overrides = f"{TINY_OVERRIDES},dataset.binary_dir={binary_dir}" + (f",{extra_overrides}" if extra_overrides else "")
    return load_config(REPO_ROOT / "config" / "models" / "visinger_demo.yaml", overrides)


def tiny_generator(config: dict[str, Any], seed: int = 0) -> VISingerGenerator:
    torch.manual_seed(seed)
    return VISingerGenerator.from_config(generator_config_from(config)).eval()


def write_runner_checkpoint(
    path: Path, config: dict[str, Any], models: dict[str, dict[str, torch.Tensor]], task_cls: str = VISINGER_TASK, describe: bool = True
) -> Path:
    """A checkpoint with the keys of `Trainer.checkpoint_state` (optimizer states empty: inference never reads them),
    the model description made by the task itself, as the trainer does (none with `describe=False`: an old checkpoint)."""
    state = {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "code_version": "test",
        "torch_version": str(torch.__version__),
        "task_cls": task_cls,
        "config": config,
        "model_classes": {name: f"test.{name}" for name in models},
        "models": models,
        "optimizers": {},
        "schedulers": {},
        "grad_scalers": {},
        "global_step": 1,
        "epoch": 0,
        "batch_in_epoch": 1,
        "batches_per_epoch": 1,
        "world_size": 1,
        "rng": [],
        "best": {"metric": "mel_l1", "mode": "min", "value": None, "step": None},
        "nonfinite_skipped": 0,
        "val_metrics": {},
    }
    if describe:
        state["description"] = import_class(task_cls, "test", "")(config).model_description().to_dict()
    path.parent.mkdir(parents=True, exist_ok=True)
    torch.save(state, path)
    return path


@dataclass(frozen=True)
class TinyExperiment:
    work_dir_root: Path
    exp_name: str
    config: dict[str, Any]
    generator: VISingerGenerator  # the weights saved in the checkpoint (eval mode)
    binary_dir: Path  # holds only f0_stats.json: what inference may read from the training data

    @property
    def exp_dir(self) -> Path:
        return self.work_dir_root / self.exp_name

    @property
    def checkpoint(self) -> Path:
        return self.exp_dir / checkpoint_name(1)


@pytest.fixture(scope="session")
def tiny_experiment(tmp_path_factory: pytest.TempPathFactory) -> TinyExperiment:
    """`<root>/tiny/model_ckpt_steps_1.pt`: a runner checkpoint of a tiny VISinger (generator + discriminator)."""
    base = tmp_path_factory.mktemp("experiment")
    binary_dir = base / "binary" / "tiny"
    binary_dir.mkdir(parents=True)
    (binary_dir / "f0_stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    config = tiny_config(binary_dir)
    generator = tiny_generator(config)
    d = config_section(config, DiscriminatorSettings, "discriminator")
    discriminator = VISingerDiscriminator(d.periods, d.n_scales, d.period_use_spectral_norm, d.max_channels)
    root = base / "checkpoints"
    experiment = TinyExperiment(root, "tiny", config, generator, binary_dir)
    models = {"generator": generator.state_dict(), "discriminator": discriminator.state_dict()}
    write_runner_checkpoint(experiment.checkpoint, config, models)
    return experiment


@pytest.fixture(scope="session")
def frontend() -> KoreanFrontend:
    """One g2pk load for the whole session (its first call costs seconds)."""
    return KoreanFrontend()


@pytest.fixture(scope="session", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: a second thread only adds contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def cli_env() -> dict[str, str]:
    """The caller's environment without PYTHONPATH (the script must find the repo itself), one thread."""
    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}
    env["OMP_NUM_THREADS"] = env["MKL_NUM_THREADS"] = "1"
    return env


def run_cli(*args: object, cwd: Path = REPO_ROOT, timeout: float = 120) -> subprocess.CompletedProcess:
    """`python inference/visinger.py ARGS` from `cwd` (the repo root unless told), output captured as text."""
    script = "inference/visinger.py" if cwd == REPO_ROOT else str(CLI)
    return subprocess.run(
        [sys.executable, script, *map(str, args)], cwd=cwd, env=cli_env(), capture_output=True, text=True, timeout=timeout
    )


def read_pcm(path: Path) -> tuple[np.ndarray, int, str]:
    """(int16 samples, sample rate, soundfile subtype) of a mono wav."""
    info = sf.info(path)
    samples, rate = sf.read(path, dtype="int16")
    assert samples.ndim == 1, f"{path}: expected mono, got shape {samples.shape}"
    return samples, rate, info.subtype


def as_pcm16(wav: np.ndarray) -> np.ndarray:
    """What `write_wav_atomic` stores for float audio."""
    return np.round(np.clip(wav, -1.0, 1.0) * 32767.0).astype(np.int16)


@pytest.fixture(scope="session")
def ddsp_experiment(tmp_path_factory) -> Path:
    """A work-dir root holding `tiny_ddsp`: the shrunk demo DDSP singer trained 2 updates on synthetic singing."""
    from tests.audio_factory import train_tiny_ddsp, write_singing_folder

    root = tmp_path_factory.mktemp("ddsp_exp")
    write_singing_folder(root / "audio")
    assert train_tiny_ddsp(root, root / "audio", updates=2) == 0
    return root
