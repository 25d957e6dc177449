"""The DDSP singer task on the runner: trains from a folder of audio, caches features once, saves the statistics."""
from __future__ import annotations

import json

import pytest
import torch

from config.errors import UserInputError
from config.loader import load_config
from tasks.checkpoint import latest_checkpoint, load_checkpoint
from tests.audio_factory import DEMO_CONFIG, train_tiny_ddsp, write_singing_folder


@pytest.mark.slow
def test_trains_from_an_audio_folder_and_reuses_the_cache(tmp_path, capsys):
    write_singing_folder(tmp_path / "audio")
    assert train_tiny_ddsp(tmp_path, tmp_path / "audio", updates=2) == 0
    work_dir = tmp_path / "tiny_ddsp"
    state = load_checkpoint(latest_checkpoint(work_dir))
    assert state["task_cls"] == "tasks.ddsp_singer_task.DDSPSingerTask" and state["global_step"] == 2
    weights = state["models"]["generator"]
    stats = json.loads((tmp_path / "cache" / "stats.json").read_text())
    assert float(weights["loudness_mean"]) == pytest.approx(stats["loudness_mean"], abs=1e-4)  # statistics saved with the model
    assert float(weights["pitch_mean_midi"]) == pytest.approx(stats["pitch_mean_midi"], abs=1e-4)
    assert torch.allclose(weights["voiced_loudness_quantiles"], torch.tensor(stats["voiced_loudness_quantiles"]), atol=1e-4)
    assert any(p.name.startswith("events.out.tfevents") for p in (work_dir / "tb").iterdir())
    meta = tmp_path / "cache" / "train" / "meta.json"
    built = meta.stat().st_mtime_ns
    assert train_tiny_ddsp(tmp_path, tmp_path / "audio", updates=3) == 0  # resume: one more update, same cache
    assert meta.stat().st_mtime_ns == built
    assert load_checkpoint(latest_checkpoint(work_dir))["global_step"] == 3


def test_the_demo_config_resolves_to_the_demo_audio_and_a_bad_chain_is_one_line():
    from tasks.ddsp_singer_task import DDSPSingerTask, build_singer, singer_config_from

    config = load_config(DEMO_CONFIG)
    assert config["audio"]["sample_rate"] == 16000 and config["audio_folder"]["audio_dir"] == "data/raw/demo/korean/wav"
    singer = build_singer(singer_config_from(config, 1))
    assert list(singer.synth.processors) == ["harmonic", "noise", "mix", "reverb"]
    bad = load_config(DEMO_CONFIG, {"model.synth": [{"name": "x", "kind": "granular", "inputs": {}}]})
    with pytest.raises(UserInputError, match="model.synth.*unknown kind 'granular'"):
        DDSPSingerTask(bad)
