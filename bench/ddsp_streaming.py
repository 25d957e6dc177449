"""Real-time DDSP singer: per-block latency and real-time factor on one thread, and the offline/streaming difference.

    python bench/ddsp_streaming.py [--exp_name demo_ddsp | --config config/models/ddsp_singer_demo.yaml]
                                   [--block_frames 1 2 4] [--seconds 10] [--threads 1]

The model is the trained experiment (`--exp_name`, under `--work_dir_root`) or, with `--config`, one built
from the config with random weights (speed does not depend on what the weights learnt; the difference to
offline does not either). The input is a synthetic track: a pitch glide with vibrato, unvoiced gaps,
a loudness contour, `--seconds` long.

Per block size, for the eager Python stream (`modules.ddsp_streaming.StreamingDDSPSinger`) and the
TorchScript export (`export_torchscript`): the median and 95th-percentile wall time of one block call
(after 20 warm-up blocks), the real-time factor (median block time / block duration; below 1 keeps up),
the latency (block duration + the one-hop algorithmic delay + the median compute time), the median CPU
time of one block (the process's, so less sensitive to other jobs than the wall time), and the largest
absolute difference between the streamed samples and the offline render (full scale = 1). Also the
offline render's real-time factor. Prints the machine and the load average: on a shared machine the
times are upper bounds.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402

import torch  # noqa: E402

from bench.machine import machine_line  # noqa: E402

WARMUP_BLOCKS = 20


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group()
    source.add_argument("--exp_name", help="a trained DDSP singer experiment")
    source.add_argument("--config", type=Path, default=REPO_ROOT / "config" / "models" / "ddsp_singer_demo.yaml", help="build from this config with random weights")
    parser.add_argument("--work_dir_root", type=Path, default=REPO_ROOT / "checkpoints")
    parser.add_argument("--block_frames", type=int, nargs="+", default=[1, 2, 4])
    parser.add_argument("--seconds", type=float, default=10.0)
    parser.add_argument("--threads", type=int, default=1)
    return parser


def load_model(args: argparse.Namespace):
    if args.exp_name:
        from inference.api import Singer

        return Singer.load(args.work_dir_root / args.exp_name, device="cpu").model
    from config.loader import load_config
    from tasks.ddsp_singer_task import build_singer, singer_config_from

    torch.manual_seed(0)
    return build_singer(singer_config_from(load_config(args.config), 1)).eval()


def synthetic_tracks(frames: int) -> tuple[torch.Tensor, torch.Tensor]:
    t = torch.arange(frames, dtype=torch.float64) / 100.0
    midi = 60 + 5 * torch.sin(2 * torch.pi * t / 4.0) + 0.2 * torch.sin(2 * torch.pi * 5.5 * t)
    f0 = 440.0 * 2.0 ** ((midi - 69) / 12)
    f0[(torch.arange(frames) % 150) > 135] = 0.0  # a short unvoiced gap every 1.5 s
    loudness = -30 + 10 * torch.sin(2 * torch.pi * t / 1.3)
    return f0.float(), loudness.float()


def time_blocks(step, f0: torch.Tensor, loudness: torch.Tensor, block_frames: int) -> tuple[list[float], list[float], torch.Tensor]:
    """(wall seconds per block, CPU seconds per block, the streamed audio)."""
    walls, cpus, pieces = [], [], []
    blocks = f0.numel() // block_frames
    with torch.no_grad():
        for index in range(blocks):
            chunk = slice(index * block_frames, (index + 1) * block_frames)
            started, started_cpu = time.perf_counter(), time.process_time()
            pieces.append(step(f0[chunk], loudness[chunk]))
            walls.append(time.perf_counter() - started)
            cpus.append(time.process_time() - started_cpu)
    return walls[WARMUP_BLOCKS:], cpus[WARMUP_BLOCKS:], torch.cat(pieces)


def main() -> int:
    args = build_parser().parse_args()
    torch.set_num_threads(args.threads)
    from modules.ddsp_streaming import StreamingDDSPSinger, export_torchscript

    model = load_model(args)
    hop, rate = model.hop_size, model.sample_rate
    frames = int(args.seconds * rate / hop)
    f0, loudness = synthetic_tracks(frames)
    started = time.perf_counter()
    with torch.no_grad():
        offline = model(f0[None], loudness[None]).audio[0, 0]
    offline_seconds = time.perf_counter() - started
    print(f"machine: {machine_line()}; torch threads {args.threads}; load average {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    print(f"model: {'experiment ' + args.exp_name if args.exp_name else str(args.config) + ' (random weights)'}, "
          f"{sum(p.numel() for p in model.parameters())} weights, {rate} Hz, hop {hop} ({1000 * hop / rate:g} ms)")  # fmt: skip
    print(f"offline render of {args.seconds:g} s: {offline_seconds:.3f} s, real-time factor {offline_seconds / args.seconds:.3f}")
    print("| path | block | median ms | p95 ms | RTF | latency ms | CPU ms (median) | RTF by CPU time | max abs diff to offline |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for block_frames in args.block_frames:
        block_ms = 1000.0 * block_frames * hop / rate
        stream = StreamingDDSPSinger(model, block_frames)
        scripted = export_torchscript(model, block_frames)
        for name, step in (("python", stream.process), ("torchscript", scripted)):
            times, cpu_times, audio = time_blocks(step, f0, loudness, block_frames)
            streamed = audio[hop:]  # the one-hop latency removed
            difference = float((streamed - offline[: streamed.numel()]).abs().max())
            median, p95 = 1000 * statistics.median(times), 1000 * sorted(times)[int(0.95 * (len(times) - 1))]
            latency = block_ms + 1000.0 * hop / rate + median
            cpu = 1000 * statistics.median(cpu_times)
            print(
                f"| {name} | {block_frames} ({block_ms:g} ms) | {median:.2f} | {p95:.2f} | {median / block_ms:.3f} | {latency:.1f} "
                f"| {cpu:.2f} | {cpu / block_ms:.3f} | {difference:.2e} |"
            )
    print(f"load average after: {' '.join(f'{x:.2f}' for x in os.getloadavg())}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
