"""The staged recipes (recipes/demo/run.sh; recipes/csd/run.sh shares recipes/lib/stages.sh): stage
ranges, bad stages and options, every stage on a 3-song demo corpus with a tiny model, and a re-run
that skips all finished work. Everything is written under tmp (data, checkpoints, pack, outputs)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
DEMO = REPO / "recipes" / "demo" / "run.sh"
CSD = REPO / "recipes" / "csd" / "run.sh"
TINY = (
    "model.inter_channels=16,model.hidden_channels=32,model.filter_channels=64,model.n_layers=1,model.prior_n_layers=1,"
    "model.posterior_n_layers=2,model.flow_n_layers=1,model.upsample_initial_channel=32,model.segment_size=16,"
    "model.istft_channels=32,model.istft_intermediate_channels=64,model.istft_n_layers=1,"
    "discriminator.max_channels=16,discriminator.periods=[2,3],trainer.max_updates=2,trainer.val_check_interval=2,"
    "trainer.num_workers=0,trainer.device=cpu,validation.max_items=1"
)


def recipe(script: Path, *args: str) -> subprocess.CompletedProcess:
    env = {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}
    env["PY"] = sys.executable  # this interpreter; no tools/setup_env.sh
    env["OMP_NUM_THREADS"] = "1"
    return subprocess.run(["bash", str(script), *args], cwd=REPO, capture_output=True, text=True, env=env, timeout=1800)


@pytest.mark.parametrize(
    "args, message",
    [
        (("--stage", "7"), "unknown stage '7' for --stage"),
        (("--stop_stage", "x"), "unknown stage 'x' for --stop_stage"),
        (("--stage", "4", "--stop_stage", "2"), "--stage 4 comes after --stop_stage 2"),
        (("--frobnicate",), "unknown option '--frobnicate'"),
        (("--hparams",), "--hparams needs a value"),
    ],
)
def test_bad_stage_or_option_is_one_line_and_exit_2(args, message):
    result = recipe(DEMO, *args)
    assert result.returncode == 2
    assert message in result.stderr and result.stderr.count("\n") == 1
    assert "== stage" not in result.stdout  # nothing ran


def test_csd_stage_0_without_data_says_where_csd_is_published(tmp_path):
    result = recipe(CSD, "--stop_stage", "0", "--data_hparams", f"dataset.raw_data_dir={tmp_path / 'nothing'}")
    assert result.returncode == 2
    line = result.stderr.strip()
    assert "\n" not in line and "no CSD recordings" in line
    assert "zenodo" in line.lower() and "CC BY-NC-SA 4.0" in line and "dataset.raw_data_dir" in line


@pytest.mark.slow
def test_demo_recipe_runs_every_stage_and_a_rerun_skips_finished_work(tmp_path):
    from preprocessor.demo_corpus import generate_demo_corpus

    generate_demo_corpus(tmp_path / "raw", songs=3)
    data = (
        f"dataset.raw_data_dir={tmp_path / 'raw'},dataset.processed_dir={tmp_path / 'processed'},"
        f"dataset.binary_dir={tmp_path / 'binary'},dataset.demo_corpus=false,dataset.valid_songs=[kr002],"
        "dataset.test_songs=[kr003],preprocess.num_workers=1"
    )
    common = [
        "--data_hparams", data, "--hparams", TINY, "--exp_name", "tiny", "--work_dir_root", str(tmp_path / "ckpt"),
        "--pack_dir", str(tmp_path / "packed"), "--out_dir", str(tmp_path / "out"),
    ]  # fmt: skip

    first = recipe(DEMO, "--stop_stage", "2", *common)
    assert first.returncode == 0, first.stderr[-3000:]
    assert [line for line in first.stdout.splitlines() if line.startswith("== stage")] == [
        "== stage 0: check the raw data", "== stage 1: preprocess", "== stage 2: binarize"
    ]
    assert "skipped: the demo corpus is at" in first.stdout
    assert (tmp_path / "binary" / "config.yaml").is_file() and not (tmp_path / "ckpt").exists()

    rest = recipe(DEMO, "--stage", "3", *common)
    assert rest.returncode == 0, rest.stderr[-3000:]
    exp = tmp_path / "ckpt" / "tiny"
    assert (exp / "model_ckpt_steps_2.pt").is_file()
    infer = exp / "infer" / "step2"
    metrics = json.loads((infer / "score" / "metrics.json").read_text())
    assert {"mcd_espnet", "log_f0_rmse_espnet"} <= set(metrics["mean"]) and (infer / "report.html").is_file()
    assert (tmp_path / "packed").is_dir() and (tmp_path / "out" / "sanchaek.wav").is_file()
    assert (tmp_path / "out" / "sanchaek.png").is_file()

    # Re-run the stages the recipe itself resumes (preprocess and training resume in their own runners,
    # tested with them): each one skips, and nothing is rewritten.
    stamps = {p: p.stat().st_mtime_ns for p in [infer / "report.html", tmp_path / "out" / "sanchaek.wav", tmp_path / "binary" / "config.yaml"]}
    again = [recipe(DEMO, "--stage", str(n), "--stop_stage", str(n), *common) for n in (2, 4)]
    again.append(recipe(DEMO, "--stage", "5", *common))
    assert all(run.returncode == 0 for run in again), [run.stderr[-2000:] for run in again]
    assert f"skipped: {tmp_path / 'binary'} was binarized from the same segments" in again[0].stdout
    assert "already holds the renders and metrics of step 2" in again[1].stdout
    assert f"skipped: {tmp_path / 'packed'} is newer" in again[2].stdout and "sanchaek.wav is newer than the pack" in again[2].stdout
    assert all(p.stat().st_mtime_ns == mtime for p, mtime in stamps.items())  # nothing was redone
