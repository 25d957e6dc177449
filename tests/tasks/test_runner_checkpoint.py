"""Checkpoint files (atomic writes, discovery, pruning, safe loading), RNG capture, fine-tuning and freezing."""
from __future__ import annotations

import logging
import random
from pathlib import Path

import numpy as np
import pytest
import torch
from torch import nn

import tasks.checkpoint as ckpt
from config.errors import UserInputError
from tasks.checkpoint import (
    BEST_NAME,
    CHECKPOINT_FORMAT,
    CHECKPOINT_FORMAT_VERSION,
    atomic_torch_save,
    checkpoint_name,
    first_state_mismatch,
    latest_checkpoint,
    list_checkpoints,
    load_checkpoint,
    prune_checkpoints,
    publish_best,
    remove_stale_temporaries,
)
from tasks.finetune import freeze_parameters, load_finetune_weights
from tasks.rng import capture_rng_state, restore_rng_state

LOG = logging.getLogger("test_runner_checkpoint")


def minimal_state(models: dict[str, nn.Module], step: int = 1) -> dict:
    return {
        "format": CHECKPOINT_FORMAT,
        "format_version": CHECKPOINT_FORMAT_VERSION,
        "global_step": step,
        "models": {name: model.state_dict() for name, model in models.items()},
    }


def test_crash_in_the_middle_of_a_write_keeps_the_previous_checkpoint(tmp_path, monkeypatch):
    good = minimal_state({"net": nn.Linear(2, 2)}, step=1)
    atomic_torch_save(good, tmp_path / checkpoint_name(1))

    def half_then_crash(obj, handle):
        handle.write(b"PK\x03\x04 half a zip")  # bytes reach the disk, then the process "dies"
        raise KeyboardInterrupt("killed while writing")

    monkeypatch.setattr(ckpt, "_serialize", half_then_crash)
    with pytest.raises(KeyboardInterrupt):
        atomic_torch_save(minimal_state({"net": nn.Linear(2, 2)}, step=2), tmp_path / checkpoint_name(2))
    with pytest.raises(KeyboardInterrupt):  # even overwriting the same name keeps the old file whole
        atomic_torch_save(minimal_state({"net": nn.Linear(2, 2)}, step=9), tmp_path / checkpoint_name(1))
    assert [p.name for p in tmp_path.iterdir()] == [checkpoint_name(1)]
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(1)
    loaded = load_checkpoint(tmp_path / checkpoint_name(1))
    assert loaded["global_step"] == 1
    assert torch.equal(loaded["models"]["net"]["weight"], good["models"]["net"]["weight"])


def test_temporaries_of_a_killed_write_are_ignored_then_removed(tmp_path):
    atomic_torch_save(minimal_state({"net": nn.Linear(2, 2)}, 3), tmp_path / checkpoint_name(3))
    stray = tmp_path / f".{checkpoint_name(7)}.abc123.tmp"  # what a SIGKILL during a write leaves
    stray.write_bytes(b"PK\x03\x04 truncated")
    assert latest_checkpoint(tmp_path) == tmp_path / checkpoint_name(3)
    assert remove_stale_temporaries(tmp_path) == [stray]
    assert not stray.exists()


def test_prune_keeps_the_newest_and_best_survives(tmp_path):
    for step in (5, 10, 15, 20):
        atomic_torch_save(minimal_state({"net": nn.Linear(1, 1)}, step), tmp_path / checkpoint_name(step))
        if step == 5:
            publish_best(tmp_path / checkpoint_name(5), tmp_path)
    removed = prune_checkpoints(tmp_path, keep=2)
    assert [p.name for p in removed] == [checkpoint_name(5), checkpoint_name(10)]
    assert [s for s, _ in list_checkpoints(tmp_path)] == [15, 20]  # numeric, not lexicographic order
    assert load_checkpoint(tmp_path / BEST_NAME)["global_step"] == 5


def test_foreign_or_broken_files_are_user_errors(tmp_path):
    broken = tmp_path / checkpoint_name(1)
    broken.write_bytes(b"not a zip at all")
    with pytest.raises(UserInputError, match="cannot be read as a checkpoint"):
        load_checkpoint(broken)
    torch.save({"weights": torch.zeros(1)}, tmp_path / "plain.pt")
    with pytest.raises(UserInputError, match="not a checkpoint written by"):
        load_checkpoint(tmp_path / "plain.pt")

    class Evil:  # a pickle that would run code must never be loaded
        def __reduce__(self):
            return (print, ("pwned",))

    torch.save({"format": CHECKPOINT_FORMAT, "x": Evil()}, tmp_path / "evil.pt")
    with pytest.raises(UserInputError, match="Unsupported global"):
        load_checkpoint(tmp_path / "evil.pt")


def test_first_state_mismatch_names_the_tensor():
    a = {"net.w": torch.zeros(2, 3), "net.b": torch.zeros(2)}
    assert first_state_mismatch(a, dict(a)) is None
    assert "'net.b' is missing" in first_state_mismatch(a, {"net.w": torch.zeros(2, 3)})
    assert "'net.w' has shape [4, 3] in the checkpoint but [2, 3]" in first_state_mismatch(a, {**a, "net.w": torch.zeros(4, 3)})
    assert "tensor 'net.extra' that the model lacks" in first_state_mismatch(a, {**a, "net.extra": torch.zeros(1)})


def test_rng_state_round_trips_through_a_weights_only_file(tmp_path):
    device = torch.device("cpu")
    random.seed(1), np.random.seed(2), torch.manual_seed(3)
    atomic_torch_save(capture_rng_state(device), tmp_path / "rng.pt")
    expected = (random.random(), np.random.normal(), torch.rand(3))
    restore_rng_state(torch.load(tmp_path / "rng.pt", weights_only=True), device)
    again = (random.random(), np.random.normal(), torch.rand(3))
    assert expected[0] == again[0] and expected[1] == again[1] and torch.equal(expected[2], again[2])


# ---------------------------------------------------------------- fine-tuning and freezing
def model_pair(hidden: int) -> dict[str, nn.Module]:
    torch.manual_seed(hidden)
    return {"gen": nn.Sequential(nn.Linear(3, hidden), nn.Linear(hidden, 2)), "disc": nn.Linear(2, 1)}


def source_checkpoint(tmp_path: Path, hidden: int = 4) -> tuple[Path, dict[str, nn.Module]]:
    models = model_pair(hidden)
    path = tmp_path / "source.pt"
    atomic_torch_save(minimal_state(models), path)
    return path, models


def test_finetune_loads_all_but_the_ignored_prefixes(tmp_path):
    path, source = source_checkpoint(tmp_path)
    target = model_pair(hidden=4)
    for p in target["gen"].parameters():
        nn.init.zeros_(p)
    before = target["gen"][1].weight.clone()
    report = load_finetune_weights(target, path, ["gen.1."], strict_shapes=True, log=LOG)
    assert torch.equal(target["gen"][0].weight, source["gen"][0].weight)
    assert torch.equal(target["disc"].weight, source["disc"].weight)
    assert torch.equal(target["gen"][1].weight, before)  # ignored: keeps its own initialisation
    assert (report.loaded, report.ignored, report.kept_init) == (4, 2, ())


def test_finetune_shape_mismatch_strict_is_an_error_naming_the_tensor(tmp_path):
    path, _ = source_checkpoint(tmp_path, hidden=4)
    with pytest.raises(UserInputError, match=r"'gen.0.weight' has shape \[4, 3\] .* but \[6, 3\]"):
        load_finetune_weights(model_pair(hidden=6), path, [], strict_shapes=True, log=LOG)


def test_finetune_shape_mismatch_lenient_keeps_init_with_a_warning(tmp_path, caplog):
    path, source = source_checkpoint(tmp_path, hidden=4)
    target = model_pair(hidden=6)
    init = target["gen"][0].weight.clone()
    with caplog.at_level(logging.WARNING, logger=LOG.name):
        report = load_finetune_weights(target, path, [], strict_shapes=False, log=LOG)
    assert torch.equal(target["gen"][0].weight, init)
    assert torch.equal(target["disc"].weight, source["disc"].weight)  # matching tensors still load
    assert set(report.kept_init) == {"gen.0.weight", "gen.0.bias", "gen.1.weight"}
    assert "gen.0.weight" in caplog.text


def test_prefix_typos_are_errors(tmp_path):
    path, _ = source_checkpoint(tmp_path)
    with pytest.raises(UserInputError, match="finetune_ignored_params: prefix 'gen.9' matches no tensor"):
        load_finetune_weights(model_pair(4), path, ["gen.9"], strict_shapes=True, log=LOG)
    with pytest.raises(UserInputError, match="frozen_params: prefix 'generator.' matches no tensor"):
        freeze_parameters(model_pair(4), ["generator."])


def test_freeze_sets_requires_grad_by_prefix():
    models = model_pair(4)
    frozen = freeze_parameters(models, ["gen.0."])
    assert frozen == ["gen.0.bias", "gen.0.weight"]
    assert not any(p.requires_grad for p in models["gen"][0].parameters())
    assert all(p.requires_grad for p in models["gen"][1].parameters())


def test_best_is_an_independent_file_not_a_link(tmp_path):
    source = tmp_path / checkpoint_name(5)
    atomic_torch_save(minimal_state({"net": nn.Linear(2, 2)}, 5), source)
    best = publish_best(source, tmp_path)
    assert best.stat().st_ino != source.stat().st_ino and source.stat().st_nlink == 1
    assert best.read_bytes() == source.read_bytes()
    source.write_bytes(source.read_bytes()[:100])  # damage to the step checkpoint...
    assert load_checkpoint(best)["global_step"] == 5  # ...is not damage to the best


def test_resume_falls_back_past_unreadable_newest_checkpoints(tmp_path):
    for step in (5, 10, 15):
        atomic_torch_save(minimal_state({"net": nn.Linear(1, 1)}, step), tmp_path / checkpoint_name(step))
    newest = tmp_path / checkpoint_name(15)
    newest.write_bytes(newest.read_bytes()[:200])  # truncated
    (tmp_path / checkpoint_name(10)).write_bytes(b"")  # emptied
    path, state, skipped = ckpt.load_resumable_checkpoint(tmp_path, newest)
    assert path == tmp_path / checkpoint_name(5) and state["global_step"] == 5
    assert [line.split(" ", 1)[0] for line in skipped] == [checkpoint_name(15), checkpoint_name(10)]
    assert all("does not load (" in line for line in skipped)
    (tmp_path / checkpoint_name(5)).write_bytes(b"junk")
    with pytest.raises(UserInputError, match=r"no step checkpoint loads \(3 tried.*use --reset"):
        ckpt.load_resumable_checkpoint(tmp_path, newest)
    # A checkpoint that loads but is foreign is not skipped: older ones would not fit either.
    torch.save({"weights": torch.zeros(1)}, tmp_path / checkpoint_name(20))
    with pytest.raises(UserInputError, match="not a checkpoint written by"):
        ckpt.load_resumable_checkpoint(tmp_path, tmp_path / checkpoint_name(20))
