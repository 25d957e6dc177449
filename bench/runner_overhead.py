"""Runner overhead: time per update of the tiny task through `tasks/runs/run.py` vs. a bare PyTorch loop.

    python bench/runner_overhead.py [--repeats 5] [--short 100] [--long 300] [--threads 1]

Both sides do the same work per update: the task's `training_step` on the same bucketed batches,
backward, gradient clipping (the runner logs the norm), AdamW step, schedule step. Each side is
timed end to end for `--short` and `--long` updates and the difference is divided by the extra
updates, so start-up, the final validation and the final checkpoint cancel out. The runner run
also does what a real run does in between: loss/norm bookkeeping, the non-finite check, logging
every `log_interval`, the progress bar. Medians over `--repeats`; target: overhead < 5 %.
"""
from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # the repo root is the import root

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

import argparse  # noqa: E402
import contextlib  # noqa: E402
import io  # noqa: E402
import statistics  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from config.loader import apply_overrides, load_config, parse_overrides  # noqa: E402
from tasks.batches import make_loader  # noqa: E402
from tasks.experiment import build_task  # noqa: E402
from tasks.optim import build_optimizer, build_scheduler  # noqa: E402
from tasks.rng import seed_everything  # noqa: E402
from tasks.runs.run import main as run_main  # noqa: E402
from tasks.samplers import BucketBatchSampler  # noqa: E402
from tasks.trainer_config import fill_runner_defaults  # noqa: E402

CONFIG = Path(__file__).resolve().parents[1] / "tests" / "tasks" / "configs" / "tiny_task.yaml"
# A step big enough to be a step (a few ms on one CPU thread), small enough to bench in a minute.
WORKLOAD = (
    "tiny.channels=32,tiny.hidden=128,tiny.num_train_items=256,tiny.min_length=64,tiny.max_length=128,"
    "tiny.num_valid_items=4,trainer.max_batch_frames=1024,trainer.max_batch_size=16,trainer.grad_clip_norm=1.0,"
    "trainer.log_interval=50,trainer.num_sanity_val_batches=0,trainer.num_workers=0"
)


def runner_seconds(updates: int, root: Path, tag: str) -> float:
    hparams = f"{WORKLOAD},trainer.max_updates={updates},trainer.val_check_interval={updates}"
    argv = ["--config", str(CONFIG), "--exp_name", tag, "--work_dir_root", str(root), "--hparams", hparams]
    start = time.perf_counter()
    with contextlib.redirect_stdout(io.StringIO()):
        assert run_main(argv) == 0
    return time.perf_counter() - start


def bare_seconds(updates: int) -> float:
    """The same task, data and optimizer in the plainest loop (no checkpoint, no validation)."""
    start = time.perf_counter()
    cfg = apply_overrides(fill_runner_defaults(load_config(CONFIG)), parse_overrides(WORKLOAD))
    runner, task = build_task(cfg, str(CONFIG))
    trainer, spec = runner.trainer, runner.optimizers["main"]
    seed_everything(trainer.seed)
    models = task.build_models()
    task.models = task.raw_models = models
    params = [p for m in models.values() for p in m.parameters()]
    optimizer = build_optimizer(spec.optimizer_cls, spec.optimizer_kwargs, params, "main")
    scheduler = build_scheduler(optimizer, spec.scheduler_cls, spec.scheduler_kwargs, spec.warmup_updates, "main")
    dataset = task.build_dataset("train")
    sampler = BucketBatchSampler(dataset.lengths, trainer.max_batch_frames, trainer.max_batch_size, shuffle=True, seed=trainer.seed)
    loader = make_loader(dataset, sampler, 0, False, seed=0, persistent=False)
    done, epoch = 0, 0
    while done < updates:
        sampler.set_epoch(epoch)
        for batch in loader:
            task.global_step = done
            loss = sum(task.training_step(batch, "main").values())
            optimizer.zero_grad(set_to_none=True)
            loss.backward()
            torch.nn.utils.clip_grad_norm_(params, trainer.grad_clip_norm)
            optimizer.step()
            scheduler.step()
            done += 1
            if done == updates:
                break
        epoch += 1
    return time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--short", type=int, default=100)
    parser.add_argument("--long", type=int, default=300)
    parser.add_argument("--threads", type=int, default=1)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    extra = args.long - args.short
    runner_ms, bare_ms = [], []
    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        runner_seconds(20, root, "warmup")  # imports, allocator, TensorBoard
        bare_seconds(20)
        for repeat in range(args.repeats):  # interleaved, so machine load drifts hit both sides alike
            r = (runner_seconds(args.long, root, f"l{repeat}") - runner_seconds(args.short, root, f"s{repeat}")) / extra
            b = (bare_seconds(args.long) - bare_seconds(args.short)) / extra
            runner_ms.append(r * 1e3)
            bare_ms.append(b * 1e3)
            print(f"repeat {repeat}: runner {r * 1e3:.3f} ms/update, bare {b * 1e3:.3f} ms/update")
    runner_med, bare_med = statistics.median(runner_ms), statistics.median(bare_ms)
    print(f"torch {torch.__version__}, {args.threads} thread(s), CPU; workload: {WORKLOAD}")
    print(f"median runner: {runner_med:.3f} ms/update ({1e3 / runner_med:.1f} updates/s)")
    print(f"median bare:   {bare_med:.3f} ms/update ({1e3 / bare_med:.1f} updates/s)")
    print(f"runner/bare time ratio {runner_med / bare_med:.3f}: overhead {100 * (runner_med / bare_med - 1):+.1f}% (target < 5%)")


if __name__ == "__main__":
    main()
