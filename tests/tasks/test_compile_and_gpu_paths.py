"""GPU-readiness code paths that run on a CPU: `trainer.compile` (torch.compile of VISinger's generator
and discriminator through the runner, a few updates of a tiny model), fused AdamW selection, and the
bf16 autocast path. The CUDA-only parts (fused kernels, TF32, fp16 GradScaler on a GPU) are measured by
bench/gpu_check.sh on a GPU machine."""
from __future__ import annotations

import json
import math

import pytest
import torch

from tasks.checkpoint import latest_checkpoint, load_checkpoint
from tasks.optim import build_optimizer
from tasks.runs.run import main as run_main
from tests.tasks.test_visinger_task import DEMO_MODEL, TINY_MODEL


def _hparams(binary_dir, extra: str) -> str:
    tiny = ",".join(f"{k}={json.dumps(v)}" for k, v in TINY_MODEL.items())
    return (
        f"{tiny},dataset.binary_dir={binary_dir},trainer.max_updates=3,trainer.val_check_interval=3,trainer.num_workers=0,"
        f"trainer.device=cpu,trainer.max_batch_size=2,trainer.num_sanity_val_batches=0,validation.max_items=1,{extra}"
    )


@pytest.mark.slow
def test_compiled_visinger_trains_a_few_updates_on_cpu(demo_binary_dir, tmp_path, caplog):
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        with caplog.at_level("INFO"):
            code = run_main(["--config", str(DEMO_MODEL), "--exp_name", "compiled", "--work_dir_root", str(tmp_path),
                             "--hparams", _hparams(demo_binary_dir, "trainer.compile=true")])  # fmt: skip
    finally:
        torch.set_num_threads(previous)
    assert code == 0
    assert "torch.compile: generator, discriminator" in caplog.text
    state = load_checkpoint(latest_checkpoint(tmp_path / "compiled"))
    assert state["global_step"] == 3
    weights = state["models"]["generator"]
    # Saved from the raw modules: plain parameter names (no "_orig_mod." of the compiled wrapper), all finite.
    assert weights and not any("_orig_mod" in key for key in weights)
    assert all(torch.isfinite(value).all() for value in weights.values() if value.is_floating_point())
    losses = [line for line in caplog.text.splitlines() if "g_mel" in line]
    assert losses, "the compiled run logged its generator losses"


def test_fused_adamw_is_asked_for_only_when_allowed():
    params = [torch.nn.Parameter(torch.zeros(3))]
    assert build_optimizer("torch.optim.AdamW", {"lr": 1e-3}, params, "optimizers.g").defaults.get("fused") in (None, False)
    # On a CPU parameter the fused kernel exists in recent PyTorch too; what matters is that it is requested...
    fused = build_optimizer("torch.optim.AdamW", {"lr": 1e-3}, params, "optimizers.g", fused=True)
    assert fused.defaults["fused"] is True
    # ...unless the YAML chose for itself, and never for an optimizer without a fused kernel.
    assert build_optimizer("torch.optim.AdamW", {"lr": 1e-3, "fused": False}, params, "g", fused=True).defaults["fused"] is False
    assert "fused" not in build_optimizer("torch.optim.SGD", {"lr": 1e-3}, params, "g", fused=True).defaults or \
        not build_optimizer("torch.optim.SGD", {"lr": 1e-3}, params, "g", fused=True).defaults.get("fused")


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device (bench/gpu_check.sh covers the GPU run)")
def test_cuda_trainer_uses_fused_adamw_and_tf32(demo_binary_dir, tmp_path):
    from config.loader import load_config
    from tasks.distributed import DistContext
    from tasks.trainer import Trainer
    from tasks.trainer_config import parse_runner_config
    from tasks.visinger_task import VISingerTask
    import logging

    cfg = load_config(DEMO_MODEL, _hparams(demo_binary_dir, "trainer.device=cuda").replace("trainer.device=cpu,", ""))
    runner = parse_runner_config(cfg)
    ctx = DistContext(rank=0, world_size=1, local_rank=0, device=torch.device("cuda"))
    trainer = Trainer(VISingerTask(cfg), runner, cfg, tmp_path, ctx, logging.getLogger("t"))
    trainer.build_models()
    trainer.build_optimizers()
    assert all(opt.defaults["fused"] for opt in trainer.optimizers.values())
    assert torch.backends.cuda.matmul.allow_tf32 and torch.backends.cudnn.allow_tf32
    assert math.isfinite(1.0)
