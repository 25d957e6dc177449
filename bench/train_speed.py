"""VISinger training speed: updates/s and samples/s (one discriminator + one generator step each).

    .venv/bin/python bench/train_speed.py --config config/models/visinger_demo.yaml --batch 8
    .venv/bin/python bench/train_speed.py --config config/models/visinger.yaml --batch 4 --segment 32
    .venv/bin/python bench/train_speed.py --config config/models/visinger.yaml --batch 16 --device cuda --precision bf16

Times the task's own `training_step` for both optimizers with backward and AdamW steps on a
synthetic batch of `--batch` items of `--seconds` each (random score, noise audio: speed does not
depend on the content), after `--warmup` updates; prints the median over `--repeats` blocks of
`--steps` updates, and the peak CUDA memory when on a GPU. The runner adds about 1-3 % on top
(bench/runner_overhead.py).
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported (config/threads.py)

import torch  # noqa: E402

from bench.machine import machine_line  # noqa: E402
from config.loader import load_config  # noqa: E402
from inference.devices import DEFAULT_DEVICE, DEVICE_HELP, resolve_device  # noqa: E402
from modules.score_inputs import ScoreInputs  # noqa: E402
from preprocessor.text.phone_set import PHONE_SET  # noqa: E402
from tasks.batches import move_to_device  # noqa: E402
from tasks.visinger_task import VISingerTask  # noqa: E402


def synthetic_batch(task: VISingerTask, batch_size: int, seconds: float, device: torch.device) -> dict:
    a = task.audio
    frames = int(seconds * a.sample_rate / a.hop_size)
    phones = max(4, frames // 12)
    generator = torch.Generator().manual_seed(0)
    phone_frames = torch.full((batch_size, phones), frames // phones, dtype=torch.long)
    phone_frames[:, -1] += frames - phone_frames.sum(1)
    wav = 0.1 * torch.randn(batch_size, 1, frames * a.hop_size, generator=generator)
    batch = {
        "phone_ids": torch.randint(1, len(PHONE_SET), (batch_size, phones), generator=generator),
        "note_pitch": torch.randint(55, 75, (batch_size, phones), generator=generator),
        "note_dur": phone_frames.float() * 3,
        "slur": torch.zeros(batch_size, phones, dtype=torch.long),
        "phone_frames": phone_frames,
        "phone_lengths": torch.full((batch_size,), phones),
        "frame_lengths": torch.full((batch_size,), frames),
        "wav": wav,
        "mel": task.features.mel(wav.squeeze(1)),
        "f0": torch.full((batch_size, frames), 220.0),
        "uv": torch.zeros(batch_size, frames),
        "speaker_id": torch.zeros(batch_size, dtype=torch.long),
        "names": [f"item{i}" for i in range(batch_size)],
    }
    batch["score"] = ScoreInputs(*(batch[field] for field in ScoreInputs._fields))  # as collate_singing builds it
    return move_to_device(batch, device)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default="config/models/visinger_demo.yaml")
    parser.add_argument("--batch", type=int, default=4)
    parser.add_argument("--segment", type=int, default=None, help="segment_size in frames (default: the config's)")
    parser.add_argument("--seconds", type=float, default=4.0, help="length of each synthetic item")
    parser.add_argument("--device", default=DEFAULT_DEVICE, help=DEVICE_HELP)
    parser.add_argument("--precision", choices=("fp32", "bf16"), default="fp32")
    parser.add_argument("--threads", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    parser.add_argument("--steps", type=int, default=5)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hparams", default=None, help='config overrides, e.g. "model.harmonic_source=false"')
    args = parser.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    overrides = ",".join(o for o in (f"model.segment_size={args.segment}" if args.segment else "", args.hparams or "") if o) or None
    cfg = load_config(REPO / args.config, overrides)
    device = resolve_device(args.device)
    task = VISingerTask(cfg)
    models = {name: model.to(device).train() for name, model in task.build_models().items()}
    task.models = task.raw_models = models
    task.device = device
    optimizers = {
        name: torch.optim.AdamW(models[name].parameters(), lr=2e-4, betas=(0.8, 0.99), eps=1e-9) for name in task.optimizer_names
    }
    batch = synthetic_batch(task, args.batch, args.seconds, device)
    dtype = torch.bfloat16 if args.precision == "bf16" else None

    def update() -> None:
        for name in task.optimizer_names:
            optimizers[name].zero_grad(set_to_none=True)
            with torch.autocast(device_type=device.type, dtype=dtype, enabled=dtype is not None):
                losses = task.training_step(batch, name)
            losses["loss"].backward()
            optimizers[name].step()

    def sync() -> None:
        if device.type == "cuda":
            torch.cuda.synchronize()

    for _ in range(args.warmup):
        update()
    sync()
    if device.type == "cuda":
        torch.cuda.reset_peak_memory_stats()
    rates = []
    for _ in range(args.repeats):
        started = time.perf_counter()
        for _ in range(args.steps):
            update()
        sync()
        rates.append(args.steps / (time.perf_counter() - started))
    rate = statistics.median(rates)
    params = {name: sum(p.numel() for p in model.parameters()) for name, model in models.items()}
    print(f"machine: {machine_line()}, torch threads {torch.get_num_threads()}")
    print(
        f"{args.config}: batch {args.batch} x {task.generator_config.segment_size}-frame segments ({args.seconds:g} s items), "
        f"{args.device} {args.precision}: {rate:.3f} updates/s, {rate * args.batch:.2f} samples/s (median of {args.repeats} x {args.steps})"
    )
    print(f"  parameters: generator {params['generator'] / 1e6:.2f} M, discriminator {params['discriminator'] / 1e6:.2f} M")
    if device.type == "cuda":
        print(f"  peak CUDA memory: {torch.cuda.max_memory_allocated() / 2**30:.2f} GiB")


if __name__ == "__main__":
    main()
