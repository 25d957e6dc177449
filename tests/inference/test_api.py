"""`inference.api.Singer` and the model files under it (`model_io`): self-describing checkpoints, the one
loader, the one pack format for VISinger and the pair, version-1 packs, old checkpoints made loadable by
`tasks/runs/describe_checkpoint.py`, and singing with the training code unimportable."""
from __future__ import annotations

import hashlib
import json
import subprocess
import sys
import textwrap
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pytest
import torch

from config.errors import UserInputError
from config.loader import load_config, save_config
from inference.api import Singer
from inference.pair import AcousticVocoderPair
from model_io.loader import load_saved
from preprocessor.text.phone_set import write_phone_set
from tasks.fs2_task import FS2SingerTask
from tasks.hifigan_task import HiFiGANTask
from tests.inference.conftest import F0_STATS, REPO_ROOT, SANCHAEK, TinyExperiment, cli_env, write_runner_checkpoint

FS2_TASK, HIFIGAN_TASK = "tasks.fs2_task.FS2SingerTask", "tasks.hifigan_task.HiFiGANTask"
FS2_TINY = (
    "model.hidden_channels=16,model.filter_channels=32,model.encoder_n_layers=1,model.decoder_n_layers=1,"
    "model.variance_filter_channels=16,model.window_size=2"
)
HIFIGAN_TINY = "model.upsample_initial_channel=16,model.resblock_kernel_sizes=[3],model.resblock_dilation_sizes=[[1]],discriminator.max_channels=8"


def wav_digest(wav: np.ndarray) -> str:
    return hashlib.sha256(np.ascontiguousarray(wav, dtype=np.float32).tobytes()).hexdigest()


@dataclass(frozen=True)
class TinyPair:
    fs2_dir: Path
    hifigan_dir: Path
    fs2_config: dict
    hifigan_config: dict
    acoustic: torch.nn.Module
    vocoder: torch.nn.Module


@pytest.fixture(scope="module")
def tiny_pair(tiny_experiment: TinyExperiment, tmp_path_factory) -> TinyPair:
    """Runner checkpoints of a tiny FS2 singer and a tiny HiFi-GAN, built and described by their tasks."""
    root = tmp_path_factory.mktemp("pair")
    data = f"dataset.binary_dir={tiny_experiment.binary_dir}"
    fs2_config = load_config(REPO_ROOT / "config" / "models" / "fs2_singer_demo.yaml", f"{FS2_TINY},{data}")
    hifigan_config = load_config(REPO_ROOT / "config" / "models" / "hifigan_demo.yaml", f"{HIFIGAN_TINY},{data}")
    torch.manual_seed(1)
    acoustic = FS2SingerTask(fs2_config).build_models()
    vocoder = HiFiGANTask(hifigan_config).build_models()
    write_runner_checkpoint(root / "fs2" / "model_ckpt_steps_1.pt", fs2_config, {k: m.state_dict() for k, m in acoustic.items()}, task_cls=FS2_TASK)
    write_runner_checkpoint(root / "hifigan" / "model_ckpt_steps_1.pt", hifigan_config, {k: m.state_dict() for k, m in vocoder.items()}, task_cls=HIFIGAN_TASK)
    return TinyPair(root / "fs2", root / "hifigan", fs2_config, hifigan_config, acoustic["acoustic"].eval(), vocoder["generator"].eval())


@pytest.fixture(scope="module")
def renders(tiny_experiment: TinyExperiment, tiny_pair: TinyPair) -> dict[str, str]:
    """sanchaek.mid sung from the runner checkpoints (the reference every other route must match exactly).

    Rendered on one thread, as the subprocesses (`cli_env`) are: a float reduction split over another
    number of threads can round differently, and earlier tests may have changed this process's count.
    """
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        visinger = Singer.load(tiny_experiment.exp_dir, device="cpu").sing(SANCHAEK)
        pair = Singer.load(tiny_pair.fs2_dir, vocoder=tiny_pair.hifigan_dir, device="cpu").sing(SANCHAEK)
    finally:
        torch.set_num_threads(threads)
    return {"visinger": wav_digest(visinger.wav), "pair": wav_digest(pair.wav)}


def test_a_checkpoint_describes_its_models_and_data(tiny_experiment):
    state = torch.load(tiny_experiment.checkpoint, map_location="cpu", weights_only=True)
    description = state["description"]
    generator = description["models"]["generator"]
    assert generator["class_path"] == "modules.visinger.VISingerGenerator" and generator["role"] == "singer"
    assert generator["config_class"] == "modules.visinger.VISingerGeneratorConfig"
    assert generator["arguments"]["hidden_channels"] == 16 and generator["arguments"]["n_phones"] == len(description["phone_set"])
    assert description["models"]["discriminator"]["class_path"] == "modules.discriminators.VISingerDiscriminator"
    assert description["stats"] == F0_STATS and description["audio"]["hop_size"] == 160
    assert description["torch_version"] == str(torch.__version__) and description["code_version"]


def test_singer_sings_float32_mono_at_the_models_rate(tiny_experiment):
    singer = Singer.load(tiny_experiment.checkpoint, device="cpu")
    out = singer.sing(SANCHAEK, key_shift=2)
    assert out.wav.dtype == np.float32 and out.wav.ndim == 1 and out.sample_rate == 16000
    assert len(out.wav) % 160 == 0 and np.abs(out.wav).max() > 0
    again = singer.sing(str(SANCHAEK), key_shift=2)  # str paths work; the same inputs give the same audio
    np.testing.assert_array_equal(out.wav, again.wav)
    assert not np.array_equal(singer.sing(SANCHAEK).wav, out.wav)


def test_packs_of_both_families_sing_with_the_training_code_unimportable(tiny_experiment, tiny_pair, renders, tmp_path):
    visinger_pack = Singer.load(tiny_experiment.exp_dir, device="cpu").pack(tmp_path / "visinger")
    pair_pack = Singer.load(tiny_pair.fs2_dir, vocoder=tiny_pair.hifigan_dir, device="cpu").pack(tmp_path / "pair")
    script = textwrap.dedent(
        f"""
        import hashlib, json, sys
        class BlockTasks:
            def find_spec(self, name, path=None, target=None):
                if name == "tasks" or name.startswith("tasks."):
                    raise ImportError("the training code is not importable here: " + name)
        sys.meta_path.insert(0, BlockTasks())
        sys.path.insert(0, {str(REPO_ROOT)!r})
        try:
            import tasks
            raise SystemExit("tasks was importable")
        except ImportError:
            pass
        import numpy as np
        from inference.api import Singer
        out = {{}}
        for name, pack in (("visinger", {str(visinger_pack)!r}), ("pair", {str(pair_pack)!r})):
            sung = Singer.load(pack, device="cpu").sing({str(SANCHAEK)!r})
            assert sung.wav.dtype == np.float32 and sung.wav.ndim == 1, (sung.wav.dtype, sung.wav.shape)
            out[name] = hashlib.sha256(sung.wav.tobytes()).hexdigest()
        assert not [m for m in sys.modules if m == "tasks" or m.startswith("tasks.")]
        print(json.dumps(out))
        """
    )
    process = subprocess.run([sys.executable, "-c", script], cwd=tmp_path, env=cli_env(), capture_output=True, text=True, timeout=300)
    assert process.returncode == 0, process.stderr[-3000:]
    assert json.loads(process.stdout.strip().splitlines()[-1]) == renders


def test_a_pair_pack_holds_both_models_and_reloads_as_the_pair(tiny_experiment, tiny_pair, tmp_path):
    pack = Singer.load(tiny_pair.fs2_dir, vocoder=tiny_pair.hifigan_dir, device="cpu").pack(tmp_path / "pair")
    saved = load_saved(pack)
    assert {name: spec.role for name, spec in saved.description.models.items()} == {"acoustic": "acoustic", "vocoder": "vocoder"}
    assert [record.task_cls for record in saved.trained] == [FS2_TASK, HIFIGAN_TASK]
    singer = Singer.load(pack, device="cpu")
    assert isinstance(singer.model, AcousticVocoderPair)
    for name, tensor in tiny_pair.vocoder.state_dict().items():
        assert torch.equal(singer.model.vocoder.state_dict()[name], tensor)
    with pytest.raises(UserInputError, match="sings by itself"):
        Singer.load(tiny_experiment.exp_dir, vocoder=tiny_pair.hifigan_dir)


# ---- version-1 packs and checkpoints without a description ---------------------------------------------


def write_version_1_visinger_pack(experiment: TinyExperiment, out: Path) -> Path:
    """A pack as `inference/visinger.py --pack` wrote it before packs held a description."""
    import dataclasses

    out.mkdir(parents=True)
    generator = experiment.generator
    payload = {
        "format": "korean-visinger-pack", "version": 1, "generator_args": dataclasses.asdict(generator.config),
        "generator": generator.state_dict(), "source": str(experiment.checkpoint),
    }  # fmt: skip
    torch.save(payload, out / "generator.pt")
    save_config(experiment.config, out / "config.yaml")
    write_phone_set(out / "phone_set.json")
    (out / "stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    return out


def write_version_1_pair_pack(pair: TinyPair, out: Path) -> Path:
    """A pack as `inference/baseline.py --pack` wrote it before packs held a description."""
    import dataclasses

    out.mkdir(parents=True)
    vocoder_arguments = dict(load_saved(pair.hifigan_dir).description.models["generator"].arguments)
    for name, kind, arguments, model in (
        ("acoustic.pt", "acoustic", dataclasses.asdict(pair.acoustic.config), pair.acoustic),
        ("vocoder.pt", "vocoder", vocoder_arguments, pair.vocoder),
    ):
        payload = {"format": "korean-svs-baseline-pack", "version": 1, "kind": kind, "arguments": arguments, "state": model.state_dict(), "source": "x"}
        torch.save(payload, out / name)
    save_config(pair.fs2_config, out / "config.yaml")
    save_config(pair.hifigan_config, out / "vocoder_config.yaml")
    write_phone_set(out / "phone_set.json")
    (out / "stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    return out


def test_version_1_packs_still_load_sing_the_same_and_repack(tiny_experiment, tiny_pair, renders, tmp_path):
    old_visinger = write_version_1_visinger_pack(tiny_experiment, tmp_path / "v1_visinger")
    old_pair = write_version_1_pair_pack(tiny_pair, tmp_path / "v1_pair")
    assert wav_digest(Singer.load(old_visinger, device="cpu").sing(SANCHAEK).wav) == renders["visinger"]
    assert wav_digest(Singer.load(old_pair, device="cpu").sing(SANCHAEK).wav) == renders["pair"]
    repacked = Singer.load(old_visinger, device="cpu").pack(tmp_path / "v2")
    assert sorted(p.name for p in repacked.iterdir()) == ["README.md", "model.pt"]
    assert Singer.load(repacked, device="cpu").pitch_range == (60, 74)
    # Packing over the old pack replaces it (it is a pack folder, so it may be replaced).
    Singer.load(old_visinger, device="cpu").pack(old_visinger)
    assert sorted(p.name for p in old_visinger.iterdir()) == ["README.md", "model.pt"]


def test_an_unreadable_or_unknown_version_1_pack_is_one_line(tiny_experiment, tmp_path):
    pack = write_version_1_visinger_pack(tiny_experiment, tmp_path / "v1")
    payload = torch.load(pack / "generator.pt", weights_only=True)
    torch.save({**payload, "version": 7}, pack / "generator.pt")
    with pytest.raises(UserInputError) as error:
        Singer.load(pack)
    assert "not a korean-visinger-pack v1 file" in str(error.value) and "\n" not in str(error.value)
    (pack / "generator.pt").write_bytes(b"not a torch file")
    with pytest.raises(UserInputError, match="cannot be read") as error:
        Singer.load(pack)
    assert "\n" not in str(error.value)


def test_a_pack_of_a_newer_format_is_one_line(tiny_experiment, tmp_path):
    pack = Singer.load(tiny_experiment.exp_dir, device="cpu").pack(tmp_path / "pack")
    payload = torch.load(pack / "model.pt", weights_only=True)
    torch.save({**payload, "version": 3}, pack / "model.pt")
    with pytest.raises(UserInputError, match="pack version 3 is not 2") as error:
        Singer.load(pack)
    assert "\n" not in str(error.value)


def test_a_file_naming_a_class_outside_modules_is_refused(tiny_experiment, tmp_path):
    pack = Singer.load(tiny_experiment.exp_dir, device="cpu").pack(tmp_path / "pack")
    payload = torch.load(pack / "model.pt", weights_only=True)
    payload["description"]["models"]["generator"]["class_path"] = "subprocess.Popen"
    torch.save(payload, pack / "model.pt")
    with pytest.raises(UserInputError, match="only the project's own models load"):
        Singer.load(pack)


def test_describe_checkpoint_makes_an_old_checkpoint_loadable(tiny_experiment, renders, tmp_path, capsys):
    from tasks.runs.describe_checkpoint import main as describe_main

    old = write_runner_checkpoint(
        tmp_path / "old" / "model_ckpt_steps_1.pt", tiny_experiment.config,
        {"generator": tiny_experiment.generator.state_dict(), "discriminator": {}}, describe=False,
    )  # fmt: skip
    with pytest.raises(UserInputError, match="describe_checkpoint.py") as error:
        Singer.load(old)
    assert "\n" not in str(error.value)
    assert describe_main([str(old.parent)]) == 0
    assert "description added" in capsys.readouterr().out
    assert wav_digest(Singer.load(old, device="cpu").sing(SANCHAEK).wav) == renders["visinger"]
    assert describe_main([str(old)]) == 0 and "already described" in capsys.readouterr().out


def test_both_families_implement_the_singer_contract(tiny_experiment, tiny_pair):
    from modules.score_inputs import ScoreInputs, SingingModel

    phone_frames = torch.tensor([[3, 5, 4, 6]])
    score = ScoreInputs(
        phone_ids=torch.tensor([[1, 10, 20, 1]]), note_pitch=torch.tensor([[0, 60, 62, 0]]),
        note_dur=phone_frames.float(), slur=torch.zeros(1, 4, dtype=torch.long), phone_frames=phone_frames,
        phone_lengths=torch.tensor([4]),
    )  # fmt: skip
    for singer in (Singer.load(tiny_experiment.exp_dir, device="cpu"), Singer.load(tiny_pair.fs2_dir, vocoder=tiny_pair.hifigan_dir, device="cpu")):
        model = singer.model
        assert isinstance(model, SingingModel) and model.n_speakers == 1
        assert isinstance(model.waveform_stage, torch.nn.Module)
        torch.manual_seed(0)
        out = model.sing(score, None, 0.0)
        assert out.wav.shape == (1, 1, 18 * 160) and out.f0_hz.shape == (1, 18)
        assert torch.equal(model.sing(score, None, 0.0).wav, out.wav)  # noise scale 0: no sampling left


# ---- CLI consistency --------------------------------------------------------------------------------


def test_the_singing_cli_finds_experiments_under_svs_checkpoints_root(tiny_experiment, tmp_path, monkeypatch):
    from config.errors import run_cli as run_main
    from inference.visinger import main

    monkeypatch.setenv("SVS_CHECKPOINTS_ROOT", str(tiny_experiment.work_dir_root))
    wav = tmp_path / "song.wav"
    monkeypatch.setattr(sys, "argv", ["visinger.py", "--exp_name", "tiny", "--midi", str(SANCHAEK), "--out", str(wav), "--device", "cpu"])
    with pytest.raises(SystemExit) as exit_info:
        run_main(main)
    assert exit_info.value.code == 0 and wav.is_file()


def test_one_device_syntax_everywhere():
    from inference.devices import check_device_name, resolve_device
    from tasks.trainer_config import TrainerConfig

    for name in ("auto", "cpu", "cuda", "cuda:1"):
        assert check_device_name(name) == name
        assert TrainerConfig(max_updates=1, device=name).device == name
    for name in ("gpu", "cuda:", "cpu:0", "CUDA"):
        with pytest.raises(UserInputError, match="use auto, cpu, cuda or cuda:N"):
            check_device_name(name)
        with pytest.raises(ValueError, match="auto, cpu, cuda or cuda:N"):
            TrainerConfig(max_updates=1, device=name)
    assert resolve_device("cpu") == torch.device("cpu")
    if not torch.cuda.is_available():
        assert resolve_device("auto") == torch.device("cpu")
        with pytest.raises(UserInputError, match="no CUDA device is available here"):
            resolve_device("cuda:0")


def test_the_deterministic_pair_cli_has_no_sampling_flags(capsys):
    from inference.baseline import build_parser as pair_parser
    from inference.visinger import build_parser as visinger_parser

    common = ["--exp_name", "x", "--out", "x.wav"]
    assert visinger_parser().parse_args([*common, "--noise_scale", "0.5", "--seed", "3"]).noise_scale == 0.5
    for flag in ("--noise_scale", "--seed"):
        with pytest.raises(SystemExit):
            pair_parser().parse_args([*common, flag, "1"])
        assert f"unrecognized arguments: {flag}" in capsys.readouterr().err
