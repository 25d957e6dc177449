"""Training through the runner in-process: exact resume, accumulation, precision, non-finite losses,
fine-tuning, best checkpoints, config round trip and the resume rules."""
from __future__ import annotations

import pytest
import torch
import yaml

from config.errors import UserInputError
from config.loader import load_config
from tasks.checkpoint import BEST_NAME, checkpoint_name, list_checkpoints
from tasks.runs.run import EXIT_DIVERGED
from tasks.trainer_config import fill_runner_defaults
from tests.tasks.runner_helpers import GAN, TINY, assert_identical, checkpoint_of, single_thread, train, weights

pytestmark = pytest.mark.usefixtures("single_thread")
_ = single_thread  # the fixture is used through pytestmark


def test_resume_mid_epoch_equals_one_uninterrupted_run(tmp_path):
    train(tmp_path, "once", TINY, "trainer.max_updates=14,trainer.val_check_interval=5")
    train(tmp_path, "split", TINY, "trainer.max_updates=7,trainer.val_check_interval=5")
    halfway = checkpoint_of(tmp_path / "split")
    assert halfway["global_step"] == 7
    assert 0 < halfway["batch_in_epoch"] < halfway["batches_per_epoch"]  # stopped mid-epoch: data order must resume
    # The second half loads batches in worker processes (a resumable key): the data order must not change.
    train(tmp_path, "split", None, "trainer.max_updates=14,trainer.num_workers=2")
    once, split = checkpoint_of(tmp_path / "once"), checkpoint_of(tmp_path / "split")
    assert once["global_step"] == split["global_step"] == 14
    assert_identical(weights(once), weights(split))
    assert once["epoch"] == split["epoch"] and once["batch_in_epoch"] == split["batch_in_epoch"]
    exp_avg = lambda s: s["optimizers"]["main"]["state"][0]["exp_avg"]  # noqa: E731
    assert torch.equal(exp_avg(once), exp_avg(split))


def test_gan_resume_with_accumulation_equals_one_run(tmp_path):
    common = "trainer.accumulate_grad_batches=2,trainer.val_check_interval=4"
    train(tmp_path, "once", GAN, f"{common},trainer.max_updates=10")
    train(tmp_path, "split", GAN, f"{common},trainer.max_updates=5")
    train(tmp_path, "split", None, "trainer.max_updates=10")
    once, split = checkpoint_of(tmp_path / "once"), checkpoint_of(tmp_path / "split")
    assert set(once["models"]) == {"net", "critic"} and set(once["optimizers"]) == {"critic", "net"}
    assert_identical(weights(once), weights(split))


DETERMINISTIC_DATA = (
    "tiny.equal_lengths=true,tiny.noise_std=0.0,tiny.dropout=0.0,tiny.num_train_items=24,trainer.shuffle=false,"
    "trainer.max_batch_frames=1000,trainer.max_updates=3,trainer.val_check_interval=100,"
    "optimizers.main.optimizer_cls=torch.optim.SGD,optimizers.main.optimizer_kwargs={lr: 0.5},"
    "optimizers.main.scheduler_cls=null,optimizers.main.scheduler_kwargs={},optimizers.main.warmup_updates=0"
)


def test_accumulating_two_batches_equals_one_double_batch(tmp_path):
    train(tmp_path, "accum", TINY, f"{DETERMINISTIC_DATA},trainer.max_batch_size=4,trainer.accumulate_grad_batches=2")
    train(tmp_path, "double", TINY, f"{DETERMINISTIC_DATA},trainer.max_batch_size=8")
    train(tmp_path, "single", TINY, f"{DETERMINISTIC_DATA},trainer.max_batch_size=4")
    accum, double, single = (weights(checkpoint_of(tmp_path / n)) for n in ("accum", "double", "single"))
    for name in accum:
        torch.testing.assert_close(accum[name], double[name], rtol=1e-5, atol=1e-6)
    assert any(not torch.allclose(accum[n], single[n], atol=1e-4) for n in accum)  # the comparison can tell


def test_bf16_autocast_trains_on_cpu_and_differs_from_fp32(tmp_path):
    hp = "trainer.max_updates=4,trainer.val_check_interval=100"
    train(tmp_path, "fp32", TINY, hp)
    train(tmp_path, "bf16", TINY, f"{hp},trainer.precision=bf16")
    fp32, bf16 = weights(checkpoint_of(tmp_path / "fp32")), weights(checkpoint_of(tmp_path / "bf16"))
    assert all(torch.isfinite(t).all() for t in bf16.values())
    assert all(t.dtype == torch.float32 for t in bf16.values())  # autocast, not a bf16 model
    assert any(not torch.equal(fp32[n], bf16[n]) for n in fp32)  # autocast really ran in bf16
    for name in fp32:
        torch.testing.assert_close(bf16[name], fp32[name], rtol=0, atol=0.05)


def test_fp16_trains_with_a_grad_scaler_and_resumes(tmp_path):
    train(tmp_path, "fp16", GAN, "trainer.max_updates=3,trainer.precision=fp16,trainer.val_check_interval=100")
    state = checkpoint_of(tmp_path / "fp16")
    assert set(state["grad_scalers"]) == {"critic", "net"}
    assert state["grad_scalers"]["net"]["scale"] > 0
    assert train(tmp_path, "fp16", None, "trainer.max_updates=5") == 0
    assert checkpoint_of(tmp_path / "fp16")["global_step"] == 5


def test_a_nonfinite_update_is_skipped_and_counted(tmp_path):
    hp = "trainer.val_check_interval=100"
    train(tmp_path, "clean", TINY, f"{hp},trainer.max_updates=2")
    train(tmp_path, "poisoned", TINY, f"{hp},trainer.max_updates=3,tiny.nan_at_steps=[2]")
    poisoned = checkpoint_of(tmp_path / "poisoned")
    assert poisoned["nonfinite_skipped"] == 1 and poisoned["global_step"] == 3
    assert_identical(weights(checkpoint_of(tmp_path / "clean")), weights(poisoned))  # the NaN step changed nothing
    log = (tmp_path / "poisoned" / "train.log").read_text()
    assert "step 3: non-finite loss or gradient for main; update skipped" in log  # the 3rd update (global_step 2 during it)


def test_a_streak_of_nonfinite_updates_stops_with_a_nonzero_exit(tmp_path, capsys):
    code = train(tmp_path, "diverged", GAN, "trainer.max_nonfinite_streak=3,tiny.nan_at_steps=[1,2,3,4,5,6]")
    assert code == EXIT_DIVERGED != 0
    assert "training stopped at step 4: 3 updates in a row had a non-finite loss" in capsys.readouterr().err
    assert "trainer.max_nonfinite_streak=3" in (tmp_path / "diverged" / "train.log").read_text()


def test_finetune_with_frozen_prefix(tmp_path):
    train(tmp_path, "source", TINY, "trainer.max_updates=3,trainer.val_check_interval=100")
    source_path = tmp_path / "source" / checkpoint_name(3)
    source = weights(checkpoint_of(tmp_path / "source"))
    train(tmp_path, "tuned", TINY, f"trainer.max_updates=3,trainer.finetune_ckpt_path={source_path},trainer.frozen_params=[net.0.]")
    tuned = weights(checkpoint_of(tmp_path / "tuned"))
    assert torch.equal(tuned["net.0.weight"], source["net.0.weight"]) and torch.equal(tuned["net.0.bias"], source["net.0.bias"])
    assert not torch.equal(tuned["net.3.weight"], source["net.3.weight"])  # loaded, then trained further
    tuned_optimizer = checkpoint_of(tmp_path / "tuned")["optimizers"]["main"]
    assert len(tuned_optimizer["param_groups"][0]["params"]) == 2  # the frozen conv is not in the optimizer
    with pytest.raises(UserInputError, match=r"'net.0.weight' has shape \[16, 4, 3\] in .* but \[8, 4, 3\] in the model"):
        train(tmp_path, "narrow", TINY, f"tiny.hidden=8,trainer.finetune_ckpt_path={source_path}")
    assert train(tmp_path, "narrow_ok", TINY, f"tiny.hidden=8,trainer.max_updates=1,trainer.finetune_ckpt_path={source_path},"
                 "trainer.finetune_strict_shapes=false") == 0
    with pytest.raises(UserInputError, match="'optimizers.main' has no trainable parameters"):
        train(tmp_path, "all_frozen", TINY, "trainer.frozen_params=[net.]")


def test_best_checkpoint_and_pruning(tmp_path):
    # "max" makes the first validation the best (the loss falls), so it must outlive pruning.
    train(tmp_path, "best", TINY, "trainer.max_updates=20,trainer.val_check_interval=5,trainer.best_metric_mode=max")
    assert [s for s, _ in list_checkpoints(tmp_path / "best")] == [15, 20]
    best = checkpoint_of(tmp_path / "best", BEST_NAME)
    assert best["global_step"] == 5 and best["best"]["step"] == 5
    assert best["best"]["value"] == pytest.approx(best["val_metrics"]["loss"])
    latest = checkpoint_of(tmp_path / "best")
    assert latest["best"]["step"] == 5 and latest["model_classes"] == {"net": "torch.nn.modules.container.Sequential"}
    assert latest["task_cls"] == "tests.tasks.tiny_task.TinyTask" and latest["code_version"]
    assert list((tmp_path / "best" / "tb").glob("events.out.tfevents.*"))
    with pytest.raises(UserInputError, match="trainer.best_metric 'psnr' is not a validation metric .*loss, mae, sampled_loss"):
        train(tmp_path, "bad_metric", TINY, "trainer.best_metric=psnr")


def test_resolved_config_round_trips(tmp_path):
    hparams = "trainer.max_updates=2,optimizers.main.optimizer_kwargs={lr: 0.01, betas: [0.5, 0.9]}"
    train(tmp_path, "cfg", TINY, hparams)
    saved_path = tmp_path / "cfg" / "config.yaml"
    saved = yaml.safe_load(saved_path.read_text())
    assert saved["trainer"]["precision"] == "fp32"  # defaults written out: every key visible and overridable
    assert saved["optimizers"]["main"]["optimizer_kwargs"] == {"lr": 0.01, "betas": [0.5, 0.9]}
    assert "base_config" not in saved
    assert saved == fill_runner_defaults(load_config(TINY, hparams))  # exactly the resolved config
    assert load_config(saved_path) == saved  # and it loads back unchanged
    assert checkpoint_of(tmp_path / "cfg")["config"] == saved


def test_resume_rules(tmp_path, capsys):
    train(tmp_path, "r", TINY, "trainer.max_updates=2,trainer.val_check_interval=100")
    capsys.readouterr()
    with pytest.raises(UserInputError, match=r"optimizers.main.warmup_updates=5 contradicts the saved config .* --reset"):
        train(tmp_path, "r", None, "optimizers.main.warmup_updates=5")
    with pytest.raises(UserInputError, match="unknown config key 'trainer.max_update'; did you mean 'trainer.max_updates'"):
        train(tmp_path, "r", None, "trainer.max_update=5")
    assert train(tmp_path, "r", None, "optimizers.main.warmup_updates=3,trainer.max_updates=4") == 0  # same value: fine
    out = capsys.readouterr().out
    assert "resuming" in out and "changed on resume: trainer.max_updates 2 -> 4" in out
    assert yaml.safe_load((tmp_path / "r" / "config.yaml").read_text())["trainer"]["max_updates"] == 4
    assert train(tmp_path, "r", GAN) == 0  # an edited/other config file is reported, the saved one is used
    assert "differs from the saved" in capsys.readouterr().err
    assert checkpoint_of(tmp_path / "r")["task_cls"] == "tests.tasks.tiny_task.TinyTask"
    assert train(tmp_path, "r", TINY, "trainer.max_updates=1", "--reset") == 0
    assert "--reset: deleting" in capsys.readouterr().out
    assert [s for s, _ in list_checkpoints(tmp_path / "r")] == [1]


def test_validate_and_infer_modes(tmp_path, capsys):
    train(tmp_path, "ev", TINY, "trainer.max_updates=4,trainer.val_check_interval=4")
    recorded = checkpoint_of(tmp_path / "ev")["val_metrics"]
    capsys.readouterr()
    assert train(tmp_path, "ev", None, None, "--validate") == 0
    out = capsys.readouterr().out
    assert f"loss {recorded['loss']:.4g}" in out  # the same numbers as during training,
    assert f"sampled_loss {recorded['sampled_loss']:.4g}" in out  # random draws included (seeded validation)
    assert train(tmp_path, "ev", None, None, "--infer") == 0
    assert (tmp_path / "ev" / "infer" / "predictions.npy").is_file()
    with pytest.raises(UserInputError, match="no experiment here"):
        train(tmp_path, "missing", None, None, "--validate")


def test_a_truncated_newest_checkpoint_resumes_from_the_previous_one_reported(tmp_path, capsys):
    train(tmp_path, "once", TINY, "trainer.max_updates=10,trainer.val_check_interval=5,trainer.num_ckpt_keep=3")
    train(tmp_path, "cut", TINY, "trainer.max_updates=10,trainer.val_check_interval=5,trainer.num_ckpt_keep=3")
    newest = tmp_path / "cut" / checkpoint_name(10)
    newest.write_bytes(newest.read_bytes()[:1000])
    capsys.readouterr()
    assert train(tmp_path, "cut", None, None) == 0  # no manual delete needed
    warnings = [line for line in capsys.readouterr().err.splitlines() if line.startswith("warning:")]
    assert len(warnings) == 1 and f"{checkpoint_name(10)} does not load (RuntimeError" in warnings[0]
    assert warnings[0].endswith("resuming from the previous checkpoint")
    # It redid steps 6-10 from step 5 and wrote step 10 again: the same weights as the uninterrupted run.
    assert_identical(weights(checkpoint_of(tmp_path / "once")), weights(checkpoint_of(tmp_path / "cut")))
