"""Expressive controls (energy, breathiness) and augmentation through binarization, training and inference."""
from __future__ import annotations

import json

import numpy as np
import pytest

def cents(a: np.ndarray, b: float) -> np.ndarray:
    return 1200 * np.log2(a / b)


@pytest.fixture(scope="module")
def augmented_binary(demo_binary_dir, tmp_path_factory):
    """The demo fixture's first train and valid segments binarized again with augmentation and breathiness."""
    from config.loader import load_config
    from preprocessor.binarize import run_binarize
    from preprocessor.settings import data_pipeline_settings
    from tests.tasks.conftest import DEMO_PREPROCESS

    processed = demo_binary_dir.parent / "processed"
    rows = [json.loads(line) for line in (processed / "metadata.jsonl").read_text(encoding="utf-8").splitlines() if line.strip()]
    keep = [next(r for r in rows if r["split"] == "train"), next(r for r in rows if r["split"] == "valid")]
    subset = tmp_path_factory.mktemp("aug_processed")
    for row in keep:
        (subset / row["wav"]).parent.mkdir(parents=True, exist_ok=True)
        (subset / row["wav"]).symlink_to(processed / row["wav"])
    (subset / "metadata.jsonl").write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in keep), encoding="utf-8")
    out = tmp_path_factory.mktemp("aug_binary") / "binary"
    overrides = {
        "dataset.processed_dir": str(subset), "dataset.binary_dir": str(out), "preprocess.num_workers": 1,
        "features.breathiness": True, "augmentation.key_shift_scale": 1.0, "augmentation.key_shift_range": [2, 2],
        "augmentation.time_stretch_scale": 1.0, "augmentation.time_stretch_range": [1.2, 1.2], "augmentation.seed": 3,
    }  # fmt: skip
    run_binarize(data_pipeline_settings(load_config(DEMO_PREPROCESS, overrides)), show_progress=False)
    return out, keep[0]


def test_binarized_copies_are_recorded_aligned_and_shifted(augmented_binary):
    from preprocessor.binary_dataset import BinaryDataset

    out, source = augmented_binary
    train = BinaryDataset(out / "train")
    names = [item["name"] for item in train.items]
    assert names == [source["item_name"], source["item_name"] + "#key+2", source["item_name"] + "#speed1.200"]
    original, key, fast = (train[i] for i in range(3))
    record = train.attributes["augmentation"]
    assert [c["key_shift"] for c in record["copies"]] == [2, 0] and record["settings"]["seed"] == 3
    assert json.loads((out / "summary.json").read_text())["augmentation"] == record
    assert "augmentation" not in BinaryDataset(out / "valid").attributes  # only the train split is augmented
    for item in (original, key, fast):
        frames = len(item["mel"])
        assert item["phone_frames"].sum() == frames == len(item["f0"]) == len(item["breathiness"]) and len(item["wav"]) == frames * 160
    # Key shift: same frames and phonemes, notes 2 semitones up, F0 2 semitones up on the frames voiced in both.
    assert np.array_equal(key["phone_frames"], original["phone_frames"]) and np.array_equal(key["phone_ids"], original["phone_ids"])
    assert np.array_equal(key["note_pitch"], np.where(original["note_pitch"] > 0, original["note_pitch"] + 2, 0))
    both = (key["f0"] > 0) & (original["f0"] > 0)
    assert np.median(cents(key["f0"][both], 1.0) - cents(original["f0"][both], 1.0)) == pytest.approx(200, abs=15)
    # Time stretch at 1.2: frames / 1.2, the same phonemes and pitches, every phoneme about 1/1.2 as long.
    assert len(fast["mel"]) == round(len(original["mel"]) / 1.2)
    assert np.array_equal(fast["phone_ids"], original["phone_ids"]) and np.array_equal(fast["note_pitch"], original["note_pitch"])
    # (onsets and codas keep their at most 3 frames, so boundaries inside a note move by up to a frame more)
    assert np.max(np.abs(np.cumsum(fast["phone_frames"]) - np.cumsum(original["phone_frames"]) / 1.2)) <= 2.0
    assert train.items[2]["speed"] == 1.2 and train.items[1]["source"] == source["item_name"]


def test_variance_model_trains_on_the_features_and_refuses_a_dataset_without_them(augmented_binary, demo_binary_dir):
    import torch

    from config.errors import UserInputError
    from tasks.svs_dataset import collate_singing
    from tasks.visinger_task import VISingerTask
    from tests.tasks.test_visinger_task import tiny_config

    out, _ = augmented_binary
    torch.manual_seed(0)
    task = VISingerTask(tiny_config(out, **{"model.variance_controls": True}))
    task.models = task.raw_models = task.build_models()
    dataset = task.build_dataset("train")
    batch = collate_singing([dataset[i] for i in range(len(dataset))])  # the original and its two copies, padded
    assert batch["breathiness"].shape == batch["energy"].shape
    terms = task.reconstruction_terms(batch, task.generator_pass(batch))
    assert torch.isfinite(terms["variance"]) and terms["variance"] > 0.05  # untrained heads are far from the curves
    terms["variance"].backward()
    generator = task.models["generator"]
    assert all(p.grad is not None and p.grad.abs().sum() > 0 for p in generator.variance_heads.parameters())
    # The prior reads the true curves while training: its variance embedding is reached by the KL.
    generator.zero_grad()
    task.reconstruction_terms(batch, task.generator_pass(batch))["kl"].backward()
    assert generator.frame_prior.variance_embedding.weight.grad.abs().sum() > 0
    # A dataset binarized without breathiness: one line saying how to binarize it.
    plain = VISingerTask(tiny_config(demo_binary_dir, **{"model.variance_controls": True}))
    plain.models = plain.raw_models = plain.build_models()
    plain_batch = collate_singing([plain.build_dataset("train")[0]])
    with pytest.raises(UserInputError, match=r"needs the breathiness feature; binarize with 'features: \{breathiness: true\}'"):
        plain.generator_pass(plain_batch)
