"""The CLI as users meet it: one-line errors with exit code 2, a clean stop on SIGTERM that resumes
exactly, and a 2-process torchrun (gloo) whose ranks end with the same, correctly averaged weights."""
from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest
import torch
import yaml

from config.errors import run_cli
from tasks.checkpoint import checkpoint_name
from tasks.runs.run import main
from tests.tasks.runner_helpers import (
    GAN,
    PYTHON,
    REPO_ROOT,
    TINY,
    assert_identical,
    checkpoint_of,
    single_thread,
    subprocess_env,
    train,
    weights,
)

pytestmark = pytest.mark.usefixtures("single_thread")
_ = single_thread
RUN_PY = str(REPO_ROOT / "tasks" / "runs" / "run.py")


def exit_code_and_stderr(argv: list[str], capsys) -> tuple[int, str]:
    capsys.readouterr()
    with pytest.raises(SystemExit) as exited:
        run_cli(lambda: main(argv))
    return exited.value.code, capsys.readouterr().err


def write_config(path: Path, edit) -> Path:
    """A standalone copy of the tiny config (bases merged) after `edit(cfg)`."""
    from config.loader import load_config

    cfg = load_config(TINY)
    edit(cfg)
    path.write_text(yaml.safe_dump(cfg))
    return path


def _unknown_task(cfg):
    cfg["task_cls"] = "tasks.nonexistent.NoSuchTask"


def _no_module_path(cfg):
    cfg["task_cls"] = "TinyTask"


def _missing_max_updates(cfg):
    del cfg["trainer"]["max_updates"]


def _empty_valid(cfg):
    cfg["tiny"]["num_valid_items"] = 0


@pytest.mark.parametrize(
    "edit, expected",
    [
        (_unknown_task, "task_cls: cannot import 'tasks.nonexistent.NoSuchTask' (no module named 'tasks.nonexistent'); give it as module.Class"),
        (_no_module_path, "task_cls: 'TinyTask' is not an import path; give it as module.Class"),
        (_missing_max_updates, "missing required key 'trainer.max_updates'"),
        (_empty_valid, "the 'valid' split is empty"),
    ],
    ids=["unknown_task_cls", "task_cls_without_module", "missing_required_key", "empty_split"],
)
def test_bad_configs_exit_2_with_one_line(tmp_path, capsys, edit, expected):
    config = write_config(tmp_path / "bad.yaml", edit)
    code, err = exit_code_and_stderr(["--config", str(config), "--exp_name", "x", "--work_dir_root", str(tmp_path / "ck")], capsys)
    assert code == 2
    assert err.count("\n") == 1 and err.startswith("error: ") and expected in err, err


def test_checkpoint_from_another_model_exits_2_naming_the_tensor(tmp_path, capsys):
    root = tmp_path / "ck"
    train(root, "small", TINY, "trainer.max_updates=2,trainer.val_check_interval=100")
    train(root, "wide", TINY, "trainer.max_updates=2,trainer.val_check_interval=100,tiny.hidden=32")
    shutil.copy(root / "wide" / checkpoint_name(2), root / "small" / checkpoint_name(3))  # newer: resume picks it
    code, err = exit_code_and_stderr(["--exp_name", "small", "--work_dir_root", str(root), "--hparams", "trainer.max_updates=4"], capsys)
    assert code == 2 and err.count("\n") == 1
    assert "model_ckpt_steps_3.pt: checkpoint from another model: tensor 'net.0.weight' has shape [32, 4, 3]" in err


def test_unwritable_work_dir_exits_2(tmp_path, capsys):
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("a file where the checkpoints root should be")  # fails even for root, unlike chmod
    code, err = exit_code_and_stderr(["--config", str(TINY), "--exp_name", "x", "--work_dir_root", str(blocker)], capsys)
    assert code == 2 and err.count("\n") == 1 and "the work dir cannot be created or written" in err


def test_missing_config_for_a_new_experiment_exits_2(tmp_path, capsys):
    code, err = exit_code_and_stderr(["--exp_name", "fresh", "--work_dir_root", str(tmp_path)], capsys)
    assert code == 2 and "--config is required" in err
    code, err = exit_code_and_stderr(["--config", str(TINY), "--exp_name", "../escape", "--work_dir_root", str(tmp_path)], capsys)
    assert code == 2 and "--exp_name" in err


def test_script_runs_without_pythonpath_and_reports_one_line(tmp_path):
    """The real entry point, from the repo root, no PYTHONPATH: sys.path setup and exit code 2."""
    config = write_config(tmp_path / "bad.yaml", _unknown_task)
    result = subprocess.run(
        [PYTHON, RUN_PY, "--config", str(config), "--exp_name", "x", "--work_dir_root", str(tmp_path / "ck")],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert result.returncode == 2
    assert result.stderr.strip().count("\n") == 0 and "no module named 'tasks.nonexistent'" in result.stderr
    assert not (tmp_path / "ck").exists()  # a bad config leaves no half-made work dir


def test_sigterm_saves_exits_0_and_resumes_exactly(tmp_path):
    root = tmp_path / "ck"
    command = [PYTHON, RUN_PY, "--exp_name", "sig", "--work_dir_root", str(root)]
    stopped = subprocess.run(
        command + ["--config", str(TINY), "--hparams", "trainer.max_updates=12,trainer.val_check_interval=5,tiny.sigterm_at_step=6"],
        cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120,
    )
    assert stopped.returncode == 0, stopped.stderr
    assert "received SIGTERM" in stopped.stderr and "stopped by SIGTERM at step 7" in stopped.stdout
    assert checkpoint_of(root / "sig")["global_step"] == 7  # the update in flight finished, then a checkpoint
    # Resume without the signal hook (a saved key: only resumable keys may change, so edit the saved config).
    saved = yaml.safe_load((root / "sig" / "config.yaml").read_text())
    saved["tiny"]["sigterm_at_step"] = None
    (root / "sig" / "config.yaml").write_text(yaml.safe_dump(saved))
    resumed = subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=120)
    assert resumed.returncode == 0, resumed.stderr
    train(root, "once", TINY, "trainer.max_updates=12,trainer.val_check_interval=5")
    assert_identical(weights(checkpoint_of(root / "once")), weights(checkpoint_of(root / "sig")))


def torchrun(root: Path, exp: str, hparams: str, dump_dir: Path) -> subprocess.CompletedProcess:
    dump_dir.mkdir()
    command = [
        PYTHON, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2", RUN_PY,
        "--config", str(GAN), "--exp_name", exp, "--work_dir_root", str(root), "--hparams", f"{hparams},tiny.dump_dir={dump_dir}",
    ]  # fmt: skip
    return subprocess.run(command, cwd=REPO_ROOT, env=subprocess_env(), capture_output=True, text=True, timeout=300)


# Equal-length items, no randomness, plain SGD: each rank's batch then weighs exactly like one
# micro-batch of a single process accumulating over world_size times as many batches.
EXACT = (
    "tiny.equal_lengths=true,tiny.noise_std=0.0,tiny.dropout=0.0,tiny.num_train_items=32,trainer.shuffle=false,"
    "trainer.max_batch_size=4,trainer.max_batch_frames=1000,trainer.max_updates=4,trainer.val_check_interval=100,"
    "optimizers.critic.optimizer_cls=torch.optim.SGD,optimizers.critic.optimizer_kwargs={lr: 0.2},"
    "optimizers.net.optimizer_cls=torch.optim.SGD,optimizers.net.optimizer_kwargs={lr: 0.5},optimizers.net.scheduler_cls=null,"
    "optimizers.net.scheduler_kwargs={}"
)


@pytest.mark.parametrize("accumulate", [1, 2], ids=["ddp_hooks", "accumulation_explicit_allreduce"])
def test_torchrun_two_ranks_agree_and_match_one_process(tmp_path, accumulate):
    root = tmp_path / "ck"
    result = torchrun(root, "ddp", f"{EXACT},trainer.accumulate_grad_batches={accumulate}", tmp_path / "dump")
    assert result.returncode == 0, result.stderr[-3000:]
    rank0, rank1 = (torch.load(tmp_path / "dump" / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert_identical(weights(rank0), weights(rank1))
    assert_identical(weights(rank0), weights(checkpoint_of(root / "ddp")))  # rank 0's checkpoint holds them
    assert rank0["global_step"] == rank1["global_step"] == 4
    seen0 = {i for batch in rank0["seen"] for i in batch}
    seen1 = {i for batch in rank1["seen"] for i in batch}
    assert seen0.isdisjoint(seen1) and len(seen0) == len(seen1) == 16  # one epoch, split in disjoint halves
    # The averaged gradients equal a single process accumulating both ranks' batches.
    train(root, "single", GAN, f"{EXACT},trainer.accumulate_grad_batches={2 * accumulate}")
    single = weights(checkpoint_of(root / "single"))
    for name, tensor in weights(rank0).items():
        torch.testing.assert_close(tensor, single[name], rtol=1e-5, atol=1e-6)


def _free_loopback_port() -> int:
    import socket

    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def test_torchrun_two_nodes_c10d_rendezvous_on_localhost(tmp_path):
    """Two `torchrun --nnodes 2` agents on this machine (c10d rendezvous, gloo), as two hosts would run
    them (docs/RUNNER.md): a few updates, and both ranks end with the same weights as rank 0's checkpoint.
    Everything binds to 127.0.0.1 (the rendezvous store, the agents' addresses and gloo's sockets)."""
    root, dump = tmp_path / "ck", tmp_path / "dump"
    dump.mkdir()
    port = _free_loopback_port()
    env = {**subprocess_env(), "GLOO_SOCKET_IFNAME": "lo", "MASTER_ADDR": "127.0.0.1"}
    hparams = f"{EXACT},tiny.dump_dir={dump}"
    agents = []
    for node in range(2):
        command = [
            PYTHON, "-m", "torch.distributed.run", "--nnodes", "2", "--nproc_per_node", "1", "--rdzv_backend", "c10d",
            "--rdzv_endpoint", f"127.0.0.1:{port}", "--rdzv_id", "two-node-test", "--local_addr", "127.0.0.1",
            "--max_restarts", "0", RUN_PY, "--config", str(GAN), "--exp_name", "nodes", "--work_dir_root", str(root),
            "--hparams", hparams,
        ]  # fmt: skip
        agents.append(subprocess.Popen(command, cwd=REPO_ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True))
    outputs = []
    try:
        for agent in agents:
            outputs.append(agent.communicate(timeout=300))
    finally:
        for agent in agents:
            if agent.poll() is None:
                agent.kill()
    assert [agent.returncode for agent in agents] == [0, 0], "\n".join(err[-2000:] for _, err in outputs)
    rank0, rank1 = (torch.load(dump / f"rank{r}.pt", weights_only=True) for r in (0, 1))
    assert rank0["global_step"] == rank1["global_step"] == 4
    assert_identical(weights(rank0), weights(rank1))
    assert_identical(weights(rank0), weights(checkpoint_of(root / "nodes")))
    seen0 = {i for batch in rank0["seen"] for i in batch}
    seen1 = {i for batch in rank1["seen"] for i in batch}
    assert seen0.isdisjoint(seen1) and len(seen0) == len(seen1) == 16  # each node trained on its own half
