"""GPU-readiness code paths that run on a CPU: `trainer.compile` (torch.compile of VISinger's generator
and discriminator through the runner, a few updates of a tiny model), fused AdamW selection, and the
bf16 autocast path. The CUDA-only parts (fused kernels, TF32, fp16 GradScaler on a GPU) are measured by
bench/gpu_check.sh on a GPU machine."""
from __future__ import annotations

import json

import pytest
import torch

from tasks.checkpoint import latest_checkpoint, load_checkpoint
from tasks.optim import build_optimizer
from tasks.rng import seed_everything
from tasks.runs.run import main as run_main
from config.loader import load_config
from tasks.visinger_task import VISingerTask
from tests.tasks.test_visinger_task import DEMO_MODEL, TINY_MODEL


def _hparams(binary_dir, extra: str) -> str:
    tiny = ",".join(f"{k}={json.dumps(v)}" for k, v in TINY_MODEL.items())
    return (
        f"{tiny},dataset.binary_dir={binary_dir},trainer.max_updates=3,trainer.val_check_interval=3,trainer.num_workers=0,"
        f"trainer.device=cpu,trainer.max_batch_size=2,trainer.num_sanity_val_batches=0,validation.max_items=1,{extra}"
    )


@pytest.mark.slow
def test_compiled_visinger_trains_a_few_updates_on_cpu(demo_binary_dir, tmp_path):
    """Generator and discriminator through torch.compile (graph capture + AOT autograd; the aot_eager
    backend skips inductor's C++ code generation, minutes on a shared 2-core CPU) for 2 updates, with the
    smallest decoder (the trainer's compile path is the same for every decoder)."""
    torch.manual_seed(0)
    previous = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        # The istft decoder at its smallest (one ConvNeXt block, no upsampling stack): graph capture costs
        # time per traced operator; against the source-excited HiFi-GAN stack this saves ~15 % of the
        # test's CPU time (95 -> 81 s user, measured side by side).
        extra = (
            "trainer.compile=true,trainer.compile_backend=aot_eager,trainer.max_updates=2,trainer.val_check_interval=2,"
            "model.decoder=istft,model.istft_channels=16,model.istft_intermediate_channels=32,model.istft_n_layers=1"
        )
        code = run_main(["--config", str(DEMO_MODEL), "--exp_name", "compiled", "--work_dir_root", str(tmp_path),
                         "--hparams", _hparams(demo_binary_dir, extra)])  # fmt: skip
    finally:
        torch.set_num_threads(previous)
    assert code == 0
    log = (tmp_path / "compiled" / "train.log").read_text()
    assert "torch.compile (aot_eager backend): generator, discriminator" in log
    state = load_checkpoint(latest_checkpoint(tmp_path / "compiled"))
    assert state["global_step"] == 2
    weights = state["models"]["generator"]
    # Saved from the raw modules: plain parameter names (no "_orig_mod." of the compiled wrapper), all finite.
    assert weights and not any("_orig_mod" in key for key in weights)
    assert all(torch.isfinite(value).all() for value in weights.values() if value.is_floating_point())
    # The compiled updates trained the weights: they moved away from the seeded initialisation.
    saved = load_config(tmp_path / "compiled" / "config.yaml")
    seed_everything(saved["trainer"]["seed"])
    initial = VISingerTask(saved).build_models()["generator"].state_dict()
    moved = [key for key, value in weights.items() if value.is_floating_point() and not torch.equal(value, initial[key])]
    assert len(moved) > len(weights) // 2


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
