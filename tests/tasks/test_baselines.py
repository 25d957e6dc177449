"""The two-stage baseline: FS2 singer (tasks/fs2_task.py) and HiFi-GAN (tasks/hifigan_task.py) trained
through the runner on a small demo corpus, rendered and evaluated by `run.py --infer`, compared by
bench/compare_models.py, and sung as one singer by inference/baseline.py.

Tiny models (a few thousand weights) and 3 updates: this checks that everything trains, decodes and
connects, not what the models learn.
"""
from __future__ import annotations

import json
import math
import os
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import soundfile as sf
import torch

from config.errors import UserInputError
from config.loader import load_config
from modules.attentions import FFTEncoder
from modules.discriminators import VISingerDiscriminator
from modules.frame_prior import F0Predictor
from modules.hifigan import HiFiGANGenerator
from modules.score_encoder import ScoreEncoder
from preprocessor.audio import AudioSettings
from tasks.checkpoint import latest_checkpoint, load_checkpoint
from tasks.fs2_task import FS2SingerTask
from tasks.hifigan_task import HiFiGANTask
from tasks.runs.run import main as run_main
from tasks.svs_dataset import collate_singing

REPO_ROOT = Path(__file__).resolve().parents[2]
FS2_YAML = REPO_ROOT / "config" / "models" / "fs2_singer_demo.yaml"
HIFIGAN_YAML = REPO_ROOT / "config" / "models" / "hifigan_demo.yaml"
SANCHAEK = REPO_ROOT / "data" / "examples" / "sanchaek.mid"

FS2_TINY = (
    "model.hidden_channels=16,model.filter_channels=32,model.encoder_n_layers=1,model.decoder_n_layers=1,"
    "model.variance_filter_channels=16,model.window_size=2"
)
HIFIGAN_TINY = (
    "model.upsample_initial_channel=16,model.resblock_kernel_sizes=[3],model.resblock_dilation_sizes=[[1]],"
    "discriminator.max_channels=8,discriminator.periods=[2,3],training.segment_size=8"
)
SHORT_RUN = "trainer.max_updates=3,trainer.val_check_interval=3,trainer.log_interval=1,trainer.max_batch_size=2,validation.max_items=2"
SAMPLE_RATE, HOP = 16000, 160  # the demo configs' audio


@pytest.fixture(scope="module", autouse=True)
def one_torch_thread():
    """Tiny models on a shared 2-core machine: a second thread only adds contention."""
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(before)


def run(root: Path, exp: str, config: Path | None = None, hparams: str | None = None, *flags: str) -> int:
    """`tasks/runs/run.py` in this process; a UserInputError propagates."""
    argv = ["--exp_name", exp, "--work_dir_root", str(root)]
    if config is not None:
        argv += ["--config", str(config)]
        hparams = f"trainer.device=cpu,{hparams}" if hparams else "trainer.device=cpu"
    if hparams:
        argv += ["--hparams", hparams]
    return run_main(argv + list(flags))


def tiny_config(yaml_path: Path, binary_dir: Path | str, extra: str = "") -> dict:
    tiny = FS2_TINY if yaml_path == FS2_YAML else HIFIGAN_TINY
    return load_config(yaml_path, f"{tiny},{SHORT_RUN},dataset.binary_dir={binary_dir}" + (f",{extra}" if extra else ""))


def train_batch(task, items: int = 2) -> dict:
    dataset = task.build_dataset("train")
    return collate_singing([dataset[i] for i in range(items)])


@dataclass(frozen=True)
class Experiments:
    root: Path
    binary_dir: Path
    fs2: str = "fs2"
    hifigan: str = "hifigan"


@pytest.fixture(scope="module")
def experiments(demo_binary_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Experiments:
    """Both baselines trained 3 updates through the runner into `<tmp>/checkpoints/{fs2,hifigan}`."""
    root = tmp_path_factory.mktemp("checkpoints")
    data = f"dataset.binary_dir={demo_binary_dir}"
    assert run(root, "fs2", FS2_YAML, f"{FS2_TINY},{SHORT_RUN},{data}") == 0
    assert run(root, "hifigan", HIFIGAN_YAML, f"{HIFIGAN_TINY},{SHORT_RUN},{data}") == 0
    return Experiments(root, demo_binary_dir)


# ---- training --------------------------------------------------------------------------------------------


@pytest.mark.parametrize("exp, models", [("fs2", {"acoustic"}), ("hifigan", {"generator", "discriminator"})])
def test_each_task_trains_through_the_runner_and_validates_finite(experiments, exp, models):
    state = load_checkpoint(latest_checkpoint(experiments.root / exp))
    assert state["global_step"] == 3
    assert state["nonfinite_skipped"] == 0  # a NaN/inf loss or gradient would have been skipped and counted
    assert set(state["models"]) == models
    assert state["val_metrics"] and all(math.isfinite(v) for v in state["val_metrics"].values()), state["val_metrics"]
    assert (experiments.root / exp / "model_best.pt").is_file()


def test_fs2_training_step_weights_every_term_and_reaches_every_parameter(demo_binary_dir):
    task = FS2SingerTask(tiny_config(FS2_YAML, demo_binary_dir))
    task.raw_models = task.models = task.build_models()
    batch = train_batch(task)
    out = task.training_step(batch, "main")
    assert set(out) == {"loss", "mel", "f0", "uv", "energy"}
    assert all(torch.isfinite(v) for v in out.values())
    weighted = sum(getattr(task.loss_weights, name) * out[name] for name in ("mel", "f0", "uv", "energy"))
    assert torch.allclose(out["loss"].detach(), weighted)
    out["loss"].backward()
    no_grad = [name for name, p in task.models["acoustic"].named_parameters() if p.grad is None]
    assert not no_grad, f"parameters outside the graph: {no_grad}"


def test_hifigan_training_steps_alternate_and_are_finite(demo_binary_dir):
    task = HiFiGANTask(tiny_config(HIFIGAN_YAML, demo_binary_dir))
    task.raw_models = task.models = task.build_models()
    batch = train_batch(task)
    d = task.training_step(batch, "discriminator")
    assert set(d) == {"loss"} and torch.isfinite(d["loss"])
    g = task.training_step(batch, "generator")  # reuses the discriminator turn's window
    assert set(g) == {"loss", "g_mel", "g_adversarial", "g_feature_matching", "g_source_mel"}
    assert all(torch.isfinite(v) for v in g.values())
    assert not task._pending  # the cached window was consumed
    g["loss"].backward()
    assert all(p.grad is not None for p in task.models["generator"].parameters())


def test_the_baselines_reuse_the_shared_modules_not_copies(demo_binary_dir):
    fs2 = FS2SingerTask(tiny_config(FS2_YAML, demo_binary_dir)).build_models()["acoustic"]
    assert type(fs2.score_encoder) is ScoreEncoder
    assert type(fs2.f0_predictor) is F0Predictor
    assert type(fs2.mel_decoder) is FFTEncoder
    vocoder = HiFiGANTask(tiny_config(HIFIGAN_YAML, demo_binary_dir)).build_models()
    assert type(vocoder["generator"]) is HiFiGANGenerator
    assert type(vocoder["discriminator"]) is VISingerDiscriminator
    assert vocoder["generator"].conv_pre.in_channels == 80  # in_channels = audio.n_mels
    mel = torch.randn(1, 80, 7)
    assert vocoder["generator"].source is not None  # the demo vocoder is source-excited, as VISinger's demo decoder
    assert vocoder["generator"](mel, f0=torch.full((1, 7), 220.0)).shape == (1, 1, 7 * HOP)


def test_fs2_padded_batch_equals_each_item_alone(demo_binary_dir):
    task = FS2SingerTask(tiny_config(FS2_YAML, demo_binary_dir))
    model = task.build_models()["acoustic"].eval()
    dataset = task.build_dataset("train")
    items = [dataset[i] for i in range(3)]
    assert len({item["mel"].shape[-1] for item in items}) > 1, "need items of different lengths to test padding"

    def infer(batch):
        return model.infer(*batch["score"])

    batch = collate_singing(items)
    # The collate's one score structure holds the very per-field tensors, in the models' argument order.
    assert [getattr(batch["score"], field) is batch[field] for field in batch["score"]._fields] == [True] * 6
    together = infer(batch)
    for row, item in enumerate(items):
        alone = infer(collate_singing([item]))
        n = item["mel"].shape[-1]
        torch.testing.assert_close(together.mel[row, :, :n], alone.mel[0], atol=1e-4, rtol=1e-4)
        torch.testing.assert_close(together.f0_hz[row, :n], alone.f0_hz[0], atol=1e-3, rtol=1e-4)
        assert torch.all(together.mel[row, :, n:] == 0)


def test_fs2_true_contours_condition_the_decoder_but_not_the_predictions(demo_binary_dir):
    task = FS2SingerTask(tiny_config(FS2_YAML, demo_binary_dir))
    model = task.build_models()["acoustic"].eval()
    batch = train_batch(task, items=1)
    score = [batch[k] for k in ("phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "phone_lengths")]
    predicted = model(*score)
    forced = model(*score, f0=batch["f0"], energy=batch["energy"])
    torch.testing.assert_close(forced.log_f0, predicted.log_f0)  # the F0 predictor reads the score only
    torch.testing.assert_close(forced.f0_hz, batch["f0"] * forced.frame_mask.squeeze(1))
    assert not torch.allclose(forced.mel, predicted.mel)
    shifted = model(*score, f0=batch["f0"], energy=batch["energy"] + 20.0)
    torch.testing.assert_close(shifted.energy_db, forced.energy_db)  # energy is predicted before its embedding
    assert not torch.allclose(shifted.mel, forced.mel)


# ---- fine-tuning the vocoder on the acoustic model's mels ------------------------------------------------


def test_vocoder_finetunes_on_the_frozen_acoustic_models_aligned_mels(experiments):
    fs2_dir = experiments.root / experiments.fs2
    config = tiny_config(HIFIGAN_YAML, experiments.binary_dir, f"training.finetune_mels_from={fs2_dir}")
    task = HiFiGANTask(config)
    batch = train_batch(task)
    mels = task.input_mels(batch)
    acoustic = load_checkpoint(latest_checkpoint(fs2_dir))["models"]["acoustic"]
    assert torch.equal(task._acoustic.state_dict()["mel_projection.weight"], acoustic["mel_projection.weight"])
    assert mels.shape == batch["mel"].shape and not torch.allclose(mels, batch["mel"])
    assert all(not p.requires_grad for p in task._acoustic.parameters())
    # Through the runner, from the trained vocoder: the acoustic model is no trained model of the run.
    hparams = (
        f"{HIFIGAN_TINY},{SHORT_RUN},dataset.binary_dir={experiments.binary_dir},training.finetune_mels_from={fs2_dir},"
        f"trainer.max_updates=1,trainer.val_check_interval=1,trainer.finetune_ckpt_path={experiments.root / experiments.hifigan / 'model_best.pt'}"
    )
    assert run(experiments.root, "hifigan_ft", HIFIGAN_YAML, hparams) == 0
    state = load_checkpoint(latest_checkpoint(experiments.root / "hifigan_ft"))
    assert set(state["models"]) == {"generator", "discriminator"} and state["nonfinite_skipped"] == 0
    with pytest.raises(UserInputError, match="training.finetune_mels_from"):
        HiFiGANTask(tiny_config(HIFIGAN_YAML, experiments.binary_dir, f"training.finetune_mels_from={fs2_dir / 'missing'}"))


# ---- test-set rendering and the comparison table -----------------------------------------------------------


@pytest.fixture(scope="module")
def rendered(experiments) -> Experiments:
    assert run(experiments.root, experiments.hifigan, None, None, "--infer") == 0
    assert run(experiments.root, experiments.fs2, None, f"infer.vocoder_exp={experiments.hifigan}", "--infer") == 0
    return experiments


@pytest.mark.parametrize("exp, source", [("fs2", "score"), ("hifigan", "gt_mel")])
def test_infer_renders_the_test_split_and_evaluates_it(rendered, exp, source):
    out = rendered.root / exp / "infer" / "step3"
    metrics = json.loads((out / source / "metrics.json").read_text(encoding="utf-8"))
    names = sorted(item["name"] for item in metrics["items"])
    assert names and all(name.startswith("kr003a_") for name in names)  # the test song only
    assert metrics["mean"]["items"] == len(names) and math.isfinite(metrics["mean"]["mcd_db"])
    for name in names:
        reference, rate = sf.read(out / "reference" / f"{name}.wav")
        generated, _ = sf.read(out / source / f"{name}.wav")
        assert rate == SAMPLE_RATE and len(generated) == len(reference) and len(reference) % HOP == 0
    summary = json.loads((out / "summary.json").read_text(encoding="utf-8"))
    assert summary[source]["items"] == len(names)


def test_infer_of_the_valid_split_renders_all_of_it_beside_the_test_renders(experiments):
    """`--split valid`: the whole valid split (not capped by validation.max_items=2) into infer_valid/."""
    assert run(experiments.root, experiments.hifigan, None, None, "--infer", "--split", "valid") == 0
    metrics = json.loads((experiments.root / "hifigan" / "infer_valid" / "step3" / "gt_mel" / "metrics.json").read_text(encoding="utf-8"))
    names = sorted(item["name"] for item in metrics["items"])
    assert len(names) == 4 and all(name.startswith("kr002a_") for name in names)
    with pytest.raises(UserInputError, match="--split only applies to --infer"):
        run(experiments.root, experiments.hifigan, None, None, "--validate", "--split", "valid")


def test_fs2_infer_without_a_vocoder_is_one_line_naming_the_key(experiments):
    with pytest.raises(UserInputError) as error:
        run(experiments.root, experiments.fs2, None, None, "--infer")
    assert "infer.vocoder_exp" in str(error.value) and "\n" not in str(error.value)


def test_a_vocoder_of_other_mels_is_refused():
    from model_io.description import check_same_features

    with pytest.raises(UserInputError, match="audio.n_mels"):
        check_same_features(AudioSettings(n_mels=80), AudioSettings(n_mels=128), "fs2", "hifigan")


def test_compare_models_collects_the_mean_rows_of_the_four_systems(rendered, tmp_path):
    from bench.compare_models import collect_rows, metrics_table

    # A VISinger experiment's infer outputs (its two sources), with an older step that must be ignored.
    visinger = rendered.root / "visinger"
    for step, mcd in ((2, 99.0), (10, 6.5)):
        for source in ("score", "posterior"):
            mean = {"items": 2, "mcd_db": mcd + (source == "posterior"), "f0_rmse_cents": 30.0, "semitone_accuracy": 0.9,
                    "vuv_error": 0.05, "in_tune_share": None}  # fmt: skip
            (visinger / "infer" / f"step{step}" / source).mkdir(parents=True)
            (visinger / "infer" / f"step{step}" / source / "metrics.json").write_text(json.dumps({"mean": mean}))
    rows = collect_rows(rendered.root, {"visinger_exp": "visinger", "fs2_exp": rendered.fs2, "hifigan_exp": rendered.hifigan})
    assert [r.label for r in rows] == ["VISinger (score)", "VISinger (posterior, upper bound)", "FS2 + HiFi-GAN", "GT mel + HiFi-GAN (upper bound)"]
    fs2_mean = json.loads((rendered.root / "fs2" / "infer" / "step3" / "score" / "metrics.json").read_text())["mean"]
    assert rows[2].mean == fs2_mean
    table = metrics_table(rows).splitlines()
    assert len(table) == 2 + 4
    assert table[2].startswith("| VISinger (score) | 6.50 | 30.00 | 90.0 | 5.0 | n/a |")
    assert table[3].startswith("| VISinger (posterior, upper bound) | 7.50 |")
    assert f"| {fs2_mean['mcd_db']:.2f} |" in table[4]
    with pytest.raises(UserInputError, match="--infer"):
        collect_rows(rendered.root, {"visinger_exp": "no_such_exp"})


# ---- the pair as one singer ------------------------------------------------------------------------------


def test_pair_sings_a_midi_to_the_score_length_and_packs_reproducibly(rendered, tmp_path):
    from inference.api import Singer
    from inference.pair import AcousticVocoderPair
    from inference.render import render_score
    from preprocessor.scores.midi_reader import read_score

    env = {key: value for key, value in os.environ.items() if key != "PYTHONPATH"}  # the script finds the repo itself
    env["OMP_NUM_THREADS"] = "1"
    common = ["--work_dir_root", str(rendered.root), "--vocoder_exp", rendered.hifigan]
    wav = tmp_path / "out" / "sanchaek.wav"
    process = subprocess.run(
        [sys.executable, "inference/baseline.py", "--exp_name", rendered.fs2, *common, "--midi", str(SANCHAEK), "--out", str(wav), "--plot"],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    samples, rate = sf.read(wav, dtype="int16")
    assert rate == SAMPLE_RATE and wav.with_suffix(".png").is_file()
    score_samples = read_score(SANCHAEK).total_seconds * SAMPLE_RATE
    assert abs(len(samples) - score_samples) <= HOP and len(samples) % HOP == 0
    assert np.abs(samples).max() > 0

    pack = tmp_path / "pack"
    process = subprocess.run(
        [sys.executable, "inference/baseline.py", "--pack", rendered.fs2, *common, "--out", str(pack)],
        cwd=REPO_ROOT, env=env, capture_output=True, text=True, timeout=120,
    )  # fmt: skip
    assert process.returncode == 0, process.stderr
    assert sorted(p.name for p in pack.iterdir()) == ["README.md", "model.pt"]
    card = (pack / "README.md").read_text(encoding="utf-8")
    assert "tasks.fs2_task.FS2SingerTask" in card and "tasks.hifigan_task.HiFiGANTask" in card and "updates trained: 3" in card
    # The pack alone (its own vocoder) sings the very same samples, through the shared render path.
    singer = Singer.load(pack, device="cpu")
    assert type(singer.model) is AcousticVocoderPair and type(singer.model.vocoder) is HiFiGANGenerator
    sung = render_score(singer, SANCHAEK, tmp_path / "from_pack.wav")
    again, _ = sf.read(tmp_path / "from_pack.wav", dtype="int16")
    np.testing.assert_array_equal(again, samples)
    result = sung.synthesis
    assert result.phrases > 1 and result.timings["decoder"] > 0 and result.timings["acoustic"] > 0


def test_pair_without_a_vocoder_or_of_two_vocoders_is_a_user_error(rendered):
    from inference.api import Singer

    with pytest.raises(UserInputError, match="--vocoder_exp"):
        Singer.load(rendered.root / rendered.fs2, device="cpu")
    with pytest.raises(UserInputError, match="holds nothing that sings"):
        Singer.load(rendered.root / rendered.hifigan, vocoder=rendered.root / rendered.hifigan, device="cpu")
    with pytest.raises(UserInputError, match="holds no single vocoder"):
        Singer.load(rendered.root / rendered.fs2, vocoder=rendered.root / rendered.fs2, device="cpu")
