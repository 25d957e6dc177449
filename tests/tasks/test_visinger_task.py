"""VISingerTask on real demo-corpus batches: one GAN update, a seeded overfit, and the runner's
train -> --infer path writing renders and finite metrics."""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch

from config.loader import load_config
from tasks.svs_dataset import collate_singing
from tasks.visinger_task import VISingerTask

REPO = Path(__file__).resolve().parents[2]
DEMO_MODEL = REPO / "config/models/visinger_demo.yaml"

# A narrow VISinger with every part present (all keys exist in visinger_demo.yaml).
TINY_MODEL = {
    "model.inter_channels": 16,
    "model.hidden_channels": 32,
    "model.filter_channels": 64,
    "model.n_layers": 1,
    "model.prior_n_layers": 1,
    "model.posterior_n_layers": 2,
    "model.flow_n_layers": 1,
    "model.upsample_initial_channel": 32,
    "model.segment_size": 16,
    "model.dropout": 0.0,
    "discriminator.max_channels": 16,
    "discriminator.periods": [2, 3],
}


def tiny_config(binary_dir: Path, **extra) -> dict:
    return load_config(DEMO_MODEL, {**TINY_MODEL, "dataset.binary_dir": str(binary_dir), **extra})


def make_task(binary_dir: Path, seed: int = 0) -> VISingerTask:
    torch.manual_seed(seed)
    task = VISingerTask(tiny_config(binary_dir))
    task.models = task.raw_models = task.build_models()
    return task


def first_batch(task: VISingerTask, count: int) -> dict:
    dataset = task.build_dataset("train")
    return collate_singing([dataset[i] for i in range(count)])


DECODER_OVERRIDES = {
    "nsf_hifigan": {},
    "hifigan": {"model.decoder": "hifigan"},
    "ddsp": {"model.decoder": "ddsp"},
    "istft": {"model.decoder": "istft", "model.istft_channels": 32, "model.istft_intermediate_channels": 64, "model.istft_n_layers": 1},
}


@pytest.mark.parametrize("decoder", list(DECODER_OVERRIDES))
def test_one_gan_update_gives_finite_losses_and_gradients_everywhere(demo_binary_dir, decoder):
    torch.manual_seed(0)
    task = VISingerTask(tiny_config(demo_binary_dir, **DECODER_OVERRIDES[decoder]))
    task.models = task.raw_models = task.build_models()
    assert task.generator_config.decoder == decoder
    batch = first_batch(task, 3)
    discriminator, generator = task.models["discriminator"], task.models["generator"]
    d_losses = task.training_step(batch, "discriminator")
    d_losses["loss"].backward()
    for name, parameter in discriminator.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), f"discriminator.{name}"
    assert all(p.grad is None for p in generator.parameters()), "the discriminator's loss must not reach the generator"
    discriminator.zero_grad(set_to_none=True)
    g_losses = task.training_step(batch, "generator")
    assert set(g_losses) == {"loss", "g_mel", "g_kl", "g_f0", "g_uv", "g_ctc", "g_adversarial", "g_feature_matching", "g_source_mel", "g_variance"}
    assert all(torch.isfinite(v) for v in g_losses.values())
    g_losses["loss"].backward()
    for name, parameter in generator.named_parameters():
        assert parameter.grad is not None and torch.isfinite(parameter.grad).all(), f"generator.{name} got no finite gradient"


def test_the_frame_prior_sees_the_true_f0_while_training(demo_binary_dir, monkeypatch):
    """The seed repository conditioned the prior on zeros while training; ours gets the batch's F0."""
    task = make_task(demo_binary_dir)
    batch = first_batch(task, 2)
    seen = {}
    prior = task.models["generator"].frame_prior
    original = prior.forward

    def spy(h, f0_hz, mask):
        seen["f0"] = f0_hz.detach().clone()
        return original(h, f0_hz, mask)

    monkeypatch.setattr(prior, "forward", spy)
    task.training_step(batch, "discriminator")
    mask = torch.arange(batch["f0"].size(1))[None] < batch["frame_lengths"][:, None]
    assert torch.equal(seen["f0"], batch["f0"] * mask)
    assert (seen["f0"] > 0).float().mean() > 0.3  # real voiced frames, not zeros


@pytest.mark.slow
def test_seeded_overfit_on_four_items_lowers_the_mel_loss(demo_binary_dir):
    """Outcome test: 60 updates on 4 fixed items cut the generator's mel L1 by at least 25 %."""
    torch.set_num_threads(1)
    task = make_task(demo_binary_dir, seed=1)
    batch = first_batch(task, 4)
    optimizers = {
        name: torch.optim.AdamW(task.models[name].parameters(), lr=2e-3, betas=(0.8, 0.99), eps=1e-9) for name in task.optimizer_names
    }
    mel_losses = []
    for _ in range(60):
        for name in task.optimizer_names:
            optimizers[name].zero_grad(set_to_none=True)
            losses = task.training_step(batch, name)
            losses["loss"].backward()
            optimizers[name].step()
            if name == "generator":
                mel_losses.append(float(losses["g_mel"]))
    first, last = sum(mel_losses[:5]) / 5, sum(mel_losses[-5:]) / 5
    print(f"mel L1 over the first 5 updates {first:.3f}, over the last 5 {last:.3f} ({1 - last / first:.0%} lower)")
    assert last < 0.75 * first


@pytest.mark.slow
def test_runner_trains_then_infer_renders_and_evaluates_the_test_split(demo_binary_dir, tmp_path):
    hparams = ",".join(f"{k}={json.dumps(v)}" for k, v in TINY_MODEL.items())
    hparams += f",dataset.binary_dir={demo_binary_dir},trainer.max_updates=3,trainer.val_check_interval=3,trainer.num_workers=0"
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    common = ["--exp_name", "tiny", "--work_dir_root", str(tmp_path)]
    train = subprocess.run(
        [sys.executable, "tasks/runs/run.py", "--config", str(DEMO_MODEL), *common, "--hparams", hparams],
        cwd=REPO, capture_output=True, text=True, env=env, timeout=600,
    )
    assert train.returncode == 0, train.stderr[-3000:]
    infer = subprocess.run([sys.executable, "tasks/runs/run.py", *common, "--infer"], cwd=REPO, capture_output=True, text=True, env=env, timeout=600)
    assert infer.returncode == 0, infer.stderr[-3000:]
    out = tmp_path / "tiny" / "infer" / "step3"
    names = sorted(p.name for p in (out / "reference").glob("*.wav"))
    assert names and names == sorted(p.name for p in (out / "score").glob("*.wav")) == sorted(p.name for p in (out / "posterior").glob("*.wav"))
    for source in ("score", "posterior"):
        metrics = json.loads((out / source / "metrics.json").read_text())
        assert len(metrics["items"]) == len(names)
        assert math.isfinite(metrics["mean"]["mcd_db"]) and metrics["mean"]["mcd_db"] > 0
        # ESPnet2's two metrics, per item and in the mean (the tiny model sings: both are finite)
        assert all(math.isfinite(item["mcd_espnet"]) for item in metrics["items"])
        assert metrics["mean"]["mcd_espnet"] > 0 and metrics["mean"]["log_f0_rmse_espnet_items"] >= 1
        for name in names:  # one picture per item and source: score roll + F0 curves + two mels
            png = out / source / name.replace(".wav", ".png")
            assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 20_000
    summary = json.loads((out / "summary.json").read_text())
    assert set(summary) == {"score", "posterior"}
    assert "MCD" in infer.stdout and "MCD ESPnet" in infer.stdout
    page = (out / "report.html").read_text(encoding="utf-8")
    assert page.count("<audio ") == 3 * len(names)  # recording + two sources per item
    for name in names:
        stem = name.replace(".wav", "")
        assert f'src="reference/{stem}.wav"' in page and f'src="score/{stem}.png"' in page and f'src="posterior/{stem}.png"' in page
    assert "MCD ESPnet (dB)" in page and "<td>score</td>" in page
    tb_files = list((tmp_path / "tiny" / "tb").rglob("events.out.tfevents.*"))
    assert tb_files, "TensorBoard events were written"


def test_discriminator_waits_until_its_start_update(demo_binary_dir):
    torch.manual_seed(0)
    task = VISingerTask(tiny_config(demo_binary_dir, **{"discriminator.start_update": 5}))
    task.models = task.raw_models = task.build_models()
    batch = first_batch(task, 2)
    task.global_step = 4
    assert task.training_step(batch, "discriminator") == {}  # the trainer skips an empty turn
    losses = task.training_step(batch, "generator")
    assert float(losses["g_adversarial"]) == 0.0 and float(losses["g_feature_matching"]) == 0.0
    losses["loss"].backward()
    assert all(p.grad is None for p in task.models["discriminator"].parameters())
    task.global_step = 5
    assert "loss" in task.training_step(batch, "discriminator")
    assert float(task.training_step(batch, "generator")["g_adversarial"]) > 0.0
