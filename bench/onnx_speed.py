"""torch against onnxruntime, and streaming: real-time factor, time to first audio, peak RSS, parity.

    python bench/onnx_speed.py [--configs config/models/visinger_demo.yaml config/models/visinger.yaml]
                               [--seconds 20] [--long_seconds 180] [--threads 1 2] [--repeats 2] [--chunk_frames 32]

For each config (random weights, seed 0: speed does not depend on what was learnt) the generator is
exported once to ONNX (inference/export_onnx.py's `export_graphs`, the export time printed), then
every case runs in a fresh subprocess (`torch.set_num_threads` / onnxruntime's intra-op threads from
the start, `ru_maxrss` its own):
- speed: `SingingSynthesizer.synthesize` on a `--seconds` synthetic score (bench/inference_speed.py's),
  one untimed warm-up, median real-time factor of `--repeats` calls, per backend and thread count;
- time to first audio on a `--long_seconds` score (2 threads, or the largest of `--threads`): without
  streaming the first audio is the whole song (`synthesize`); with streaming, the first
  `AudioChunk` of `SingingSynthesizer.stream(plan(notes, lazy=True), chunk_frames=--chunk_frames).chunks()`
  (the front end inside the timed span in both: lazy, it pronounces the first phrase only);
- parity: max |wav| difference of onnxruntime vs torch on the `--seconds` score (same seed, so the
  same noise), and of the streamed vs the whole render (torch).
Peak RSS is the whole process's (Python, torch, onnxruntime, the model).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import tempfile  # noqa: E402
import time  # noqa: E402

from bench.inference_speed import RESULT_PREFIX, _peak_rss_mb, machine, synthetic_score  # noqa: E402
from inference.synthesis import ONEDNN_CACHE_VARIABLE  # noqa: E402


def _build(config_path: str):
    import torch

    from config.loader import config_section, load_config
    from modules.visinger import VISingerGenerator
    from preprocessor.audio import AudioSettings
    from tasks.visinger_task import generator_config_from

    config = load_config(config_path)
    torch.manual_seed(0)
    generator = VISingerGenerator.from_config(generator_config_from(config)).eval()
    return generator, config_section(config, AudioSettings, "audio")


def _synthesizer(config_path: str, backend: str, onnx_dir: str, threads: int):
    import torch

    torch.set_num_threads(threads)
    from inference.onnx_backend import OnnxRenderer
    from inference.synthesis import SingingSynthesizer, limit_onednn_primitive_cache

    limit_onednn_primitive_cache()
    generator, audio = _build(config_path)
    model = generator if backend == "torch" else OnnxRenderer(Path(onnx_dir), threads=threads)
    synthesizer = SingingSynthesizer(model, audio.sample_rate, audio.hop_size)
    synthesizer.frontend.phonemize(synthetic_score(2.0))  # load g2pk now: not the song's time
    return synthesizer


def worker(case: dict) -> dict:
    import numpy as np

    kind = case["kind"]
    if kind == "parity":
        torch_synth = _synthesizer(case["config"], "torch", case["onnx_dir"], case["threads"])
        onnx_synth = _synthesizer(case["config"], "onnx", case["onnx_dir"], case["threads"])
        notes = synthetic_score(case["seconds"])
        torch_wav = torch_synth.synthesize(notes, seed=0).wav
        onnx_wav = onnx_synth.synthesize(notes, seed=0).wav
        streamed = np.concatenate([c.wav for c in torch_synth.stream(torch_synth.plan(notes), seed=0, chunk_frames=case["chunk_frames"]).chunks()])
        return {"onnx_vs_torch": float(np.abs(onnx_wav - torch_wav).max()), "stream_vs_whole": float(np.abs(streamed - torch_wav).max()),
                "peak_abs": float(np.abs(torch_wav).max())}  # fmt: skip
    synthesizer = _synthesizer(case["config"], case["backend"], case["onnx_dir"], case["threads"])
    notes = synthetic_score(case["seconds"])
    if kind == "speed":
        times = []
        for index in range(case["repeats"] + 1):
            started = time.perf_counter()
            result = synthesizer.synthesize(notes, seed=index)
            if index:
                times.append(time.perf_counter() - started)
        audio_seconds = len(result.wav) / result.sample_rate
        return {"rtf": statistics.median(times) / audio_seconds, "audio_seconds": audio_seconds, "phrases": result.phrases,
                "peak_rss_mb": _peak_rss_mb()}  # fmt: skip
    # time to first audio
    synthesizer.synthesize(synthetic_score(3.0), seed=0)  # warm the backend up on another score
    started = time.perf_counter()
    if case["stream"]:
        chunks = synthesizer.stream(synthesizer.plan(notes, lazy=True), seed=0, chunk_frames=case["chunk_frames"]).chunks()
        first = next(chunks)
        first_audio = time.perf_counter() - started
        first_seconds = len(first.wav) / synthesizer.sample_rate
        if not case["stream_total"]:
            return {"first_audio": first_audio, "first_chunk_seconds": first_seconds, "total": None, "peak_rss_mb": _peak_rss_mb()}
        for _ in chunks:  # the rest of the song, for the total time
            pass
    else:
        synthesizer.synthesize(notes, seed=0)
        first_audio = time.perf_counter() - started
        first_seconds = case["seconds"]
    return {"first_audio": first_audio, "first_chunk_seconds": first_seconds, "total": time.perf_counter() - started, "peak_rss_mb": _peak_rss_mb()}


def run_case(case: dict) -> dict:
    env = dict(os.environ, OMP_NUM_THREADS=str(case["threads"]), MKL_NUM_THREADS=str(case["threads"]))
    env.pop(ONEDNN_CACHE_VARIABLE, None)
    command = [sys.executable, __file__, "--worker", json.dumps(case)]
    process = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"worker failed ({case}):\n{process.stderr[-3000:]}")
    line = next(line for line in reversed(process.stdout.splitlines()) if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--configs", nargs="+", default=["config/models/visinger_demo.yaml", "config/models/visinger.yaml"])
    parser.add_argument("--seconds", type=float, default=20.0)
    parser.add_argument("--long_seconds", type=float, default=180.0)
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=2)
    parser.add_argument("--chunk_frames", type=int, default=32)
    parser.add_argument("--stream_total", action="store_true", help="also stream the rest of the long song (its total time)")
    parser.add_argument("--whole_song_configs", nargs="*", default=None,
                        help="configs whose long song is also rendered whole (time to first audio without streaming); default: all")
    parser.add_argument("--skip_speed", action="store_true", help="only the time-to-first-audio cases (no RTF rows, no parity)")
    parser.add_argument("--worker", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(json.loads(args.worker))))
        return

    from inference.export_onnx import DEFAULT_OPSET, export_graphs

    print(f"machine: {machine()}")
    ttfa_threads = max(args.threads)
    with tempfile.TemporaryDirectory(prefix="onnx_bench_") as tmp:
        rows, ttfa, parity = [], [], []
        for config in args.configs:
            name = Path(config).stem
            generator, audio = _build(config)
            onnx_dir = Path(tmp) / name
            onnx_dir.mkdir()
            started = time.perf_counter()
            export_graphs("visinger", (generator,), audio.sample_rate, audio.hop_size, onnx_dir, DEFAULT_OPSET, config)
            export_seconds = time.perf_counter() - started
            parameters = sum(p.numel() for n, p in generator.named_parameters() if not n.startswith(("posterior_encoder.", "phoneme_predictor.")))
            del generator
            print(f"  {name}: exported in {export_seconds:.1f} s", file=sys.stderr)
            base = {"config": config, "onnx_dir": str(onnx_dir), "chunk_frames": args.chunk_frames}
            for backend in ("torch", "onnx") if not args.skip_speed else ():
                for threads in args.threads:
                    result = run_case({**base, "kind": "speed", "backend": backend, "threads": threads, "seconds": args.seconds, "repeats": args.repeats})
                    rows.append((name, parameters, export_seconds, backend, threads, result))
                    print(f"  speed {name} {backend} {threads} thread(s): RTF {result['rtf']:.3f}", file=sys.stderr)
            whole = args.whole_song_configs is None or config in args.whole_song_configs
            for backend in ("torch", "onnx"):
                for stream in (False, True) if whole else (True,):
                    result = run_case({**base, "kind": "ttfa", "backend": backend, "threads": ttfa_threads, "seconds": args.long_seconds,
                                       "stream": stream, "stream_total": args.stream_total})  # fmt: skip
                    ttfa.append((name, backend, stream, result))
                    print(f"  first audio {name} {backend} stream={stream}: {result['first_audio']:.2f} s", file=sys.stderr)
            if not args.skip_speed:
                parity.append((name, run_case({**base, "kind": "parity", "threads": ttfa_threads, "seconds": args.seconds})))
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end {load} (1/5/15 min)\n")
    print(f"Real-time factor (compute s per audio s; median of {args.repeats} after a warm-up), {args.seconds:g} s synthetic score\n")
    print("| config | params at inference | export (s) | backend | threads | RTF | peak RSS (MiB) |")
    print("|---|---:|---:|---|---:|---:|---:|")
    for name, parameters, export_seconds, backend, threads, r in rows:
        print(f"| {name} | {parameters / 1e6:.2f} M | {export_seconds:.1f} | {backend} | {threads} | {r['rtf']:.3f} | {r['peak_rss_mb']:.0f} |")
    print(f"\nTime to first audio, {args.long_seconds:g} s synthetic score, {ttfa_threads} thread(s), chunks of {args.chunk_frames} frames\n")
    print("| config | backend | streaming | first audio (s) | first chunk (s of audio) | whole song (s) | peak RSS (MiB) |")
    print("|---|---|---|---:|---:|---:|---:|")
    for name, backend, stream, r in ttfa:
        total = "-" if r["total"] is None else f"{r['total']:.1f}"
        print(f"| {name} | {backend} | {'yes' if stream else 'no'} | {r['first_audio']:.2f} | {r['first_chunk_seconds']:.2f} | {total} | {r['peak_rss_mb']:.0f} |")
    print(f"\nParity, {args.seconds:g} s synthetic score (max |wav difference|; the torch render's peak |wav| beside it)\n")
    print("| config | onnxruntime vs torch | streamed vs whole (torch) | peak |wav| |")
    print("|---|---:|---:|---:|")
    for name, r in parity:
        print(f"| {name} | {r['onnx_vs_torch']:.2e} | {r['stream_vs_whole']:.2e} | {r['peak_abs']:.3f} |")


if __name__ == "__main__":
    main()
