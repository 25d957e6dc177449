"""The four VISinger decoders side by side in one run: speed, size, memory and training speed on CPU.

    python bench/decoders.py                                   # the issue's figures (30 s score, 3-min song, 1 and 2 threads)
    python bench/decoders.py --seconds 10 --repeats 1 --decoders hifigan istft   # a quicker look

For every decoder (`model.decoder`) it builds the paper-scale VISinger that uses it (random weights:
speed does not depend on what they learnt) and, in a fresh subprocess per case (so that the thread
count applies from the start and the peak RSS belongs to that case alone), measures:
- the real-time factor (compute seconds per audio second) of the whole model and of the decoder alone
  (`SingingSynthesizer.synthesize`'s `timings`) on a `--seconds` synthetic score
  (bench/inference_speed.py's: phrases separated by rests), for each `--threads`; the median of
  `--repeats` calls after one untimed warm-up;
- parameters of the decoder and of what inference runs;
- peak RSS of one call on a `--long_seconds` song (1 thread, the CLI's oneDNN cache limit);
- training updates/s (one discriminator + one generator step, AdamW) at paper scale (batch 4,
  segment 32 frames) and at demo scale (the decoder's demo config, batch 8), `--train_threads` threads.

    decoder      paper-scale config                           demo config
    hifigan      visinger.yaml                                visinger_demo.yaml + model.decoder=hifigan
    nsf_hifigan  visinger.yaml + model.decoder=nsf_hifigan    visinger_demo.yaml
    ddsp         visinger2.yaml                               visinger2_demo.yaml
    istft        visinger_fast.yaml                           visinger_fast_demo.yaml

Ratios are against `hifigan` (today's paper decoder) measured in the same run. Speed on a shared
machine moves with the load: the load average is printed at the start and at the end.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

MODELS = "config/models"
# decoder -> ((paper config, overrides), (demo config, overrides))
DECODER_CONFIGS = {
    "hifigan": ((f"{MODELS}/visinger.yaml", ""), (f"{MODELS}/visinger_demo.yaml", "model.decoder=hifigan")),
    "nsf_hifigan": ((f"{MODELS}/visinger.yaml", "model.decoder=nsf_hifigan"), (f"{MODELS}/visinger_demo.yaml", "")),
    "ddsp": ((f"{MODELS}/visinger2.yaml", ""), (f"{MODELS}/visinger2_demo.yaml", "")),
    "istft": ((f"{MODELS}/visinger_fast.yaml", ""), (f"{MODELS}/visinger_fast_demo.yaml", "")),
}
RESULT_PREFIX = "RESULT "


def _load(config: str, hparams: str):
    from config.loader import load_config

    return load_config(REPO_ROOT / config, hparams or None)


def inference_worker(config: str, hparams: str, seconds: float, repeats: int, warmup: bool) -> dict:
    import torch

    from bench.inference_speed import synthetic_score
    from config.loader import config_section
    from inference.synthesis import SingingSynthesizer, limit_onednn_primitive_cache
    from modules.visinger import VISingerGenerator
    from preprocessor.audio import AudioSettings
    from tasks.visinger_task import generator_config_from

    limit_onednn_primitive_cache()  # as the CLI does
    cfg = _load(config, hparams)
    audio = config_section(cfg, AudioSettings, "audio")
    torch.manual_seed(0)
    generator = VISingerGenerator.from_config(generator_config_from(cfg)).eval()
    synthesizer = SingingSynthesizer(generator, audio.sample_rate, audio.hop_size)
    notes = synthetic_score(seconds)
    synthesizer.frontend.phonemize(notes[:2])  # g2pk's dictionaries are not the song's cost
    runs = []
    for index in range(repeats + int(warmup)):
        started = time.perf_counter()
        result = synthesizer.synthesize(notes, source="<synthetic>", seed=index)
        elapsed = time.perf_counter() - started
        if warmup and index == 0:
            continue
        runs.append({"total": elapsed, "decoder": result.timings["decoder"]})
    audio_seconds = len(result.wav) / result.sample_rate
    inference_only = [p for name, p in generator.named_parameters() if not name.startswith(("posterior_encoder", "phoneme_predictor"))]
    return {
        "rtf": statistics.median(r["total"] for r in runs) / audio_seconds,
        "decoder_rtf": statistics.median(r["decoder"] for r in runs) / audio_seconds,
        "peak_rss_mb": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
        "decoder_parameters": sum(p.numel() for p in generator.decoder.parameters()),
        "inference_parameters": sum(p.numel() for p in inference_only),
    }


def train_worker(config: str, hparams: str, batch_size: int, segment: int | None, steps: int) -> dict:
    import torch

    from bench.train_speed import synthetic_batch
    from tasks.visinger_task import VISingerTask

    overrides = ",".join(o for o in (hparams, f"model.segment_size={segment}" if segment else "") if o)
    torch.manual_seed(0)
    task = VISingerTask(_load(config, overrides))
    task.models = task.raw_models = {name: model.train() for name, model in task.build_models().items()}
    task.device = torch.device("cpu")
    optimizers = {name: torch.optim.AdamW(task.models[name].parameters(), lr=2e-4, betas=(0.8, 0.99)) for name in task.optimizer_names}
    batch = synthetic_batch(task, batch_size, 4.0, task.device)

    def update() -> None:
        for name in task.optimizer_names:
            optimizers[name].zero_grad(set_to_none=True)
            losses = task.training_step(batch, name)
            losses["loss"].backward()
            optimizers[name].step()

    update()  # warm-up
    started = time.perf_counter()
    for _ in range(steps):
        update()
    return {"updates_per_s": steps / (time.perf_counter() - started)}


def run_worker(kind: str, threads: int, **arguments) -> dict:
    """A worker in a fresh Python with `threads` intra-op threads from its first line."""
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    code = (
        f"import sys, json; sys.path.insert(0, {str(REPO_ROOT)!r}); import torch; torch.set_num_threads({threads}); "
        f"from bench.decoders import {kind}_worker as w, RESULT_PREFIX; "
        f"print(RESULT_PREFIX + json.dumps(w(**json.loads({json.dumps(json.dumps(arguments))}))))"
    )
    process = subprocess.run([sys.executable, "-c", code], env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"{kind} worker failed for {arguments}:\n{process.stderr[-3000:]}")
    line = next(line for line in reversed(process.stdout.splitlines()) if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX) :])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--decoders", nargs="+", default=list(DECODER_CONFIGS), choices=list(DECODER_CONFIGS))
    parser.add_argument("--seconds", type=float, default=30.0, help="score length of the speed cases")
    parser.add_argument("--long_seconds", type=float, default=180.0, help="song length of the memory case (0: skip)")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--train_steps", type=int, default=5, help="timed updates per training case (0: skip)")
    parser.add_argument("--train_threads", type=int, default=2)
    args = parser.parse_args()

    from bench.inference_speed import machine

    print(f"machine: {machine()}")
    rows: dict[str, dict] = {}
    for decoder in args.decoders:
        (paper, paper_hp), (demo, demo_hp) = DECODER_CONFIGS[decoder]
        row: dict = {"config": paper + (f' --hparams "{paper_hp}"' if paper_hp else "")}
        for threads in args.threads:
            case = run_worker("inference", threads, config=paper, hparams=paper_hp, seconds=args.seconds, repeats=args.repeats, warmup=True)
            row[f"rtf_{threads}"], row[f"decoder_rtf_{threads}"] = case["rtf"], case["decoder_rtf"]
            row["decoder_parameters"], row["inference_parameters"] = case["decoder_parameters"], case["inference_parameters"]
            print(f"  {decoder}: {threads} thread(s) done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)
        if args.long_seconds > 0:
            case = run_worker("inference", 1, config=paper, hparams=paper_hp, seconds=args.long_seconds, repeats=1, warmup=False)
            row["peak_rss_mb"] = case["peak_rss_mb"]
        if args.train_steps > 0:
            row["train_paper"] = run_worker("train", args.train_threads, config=paper, hparams=paper_hp, batch_size=4, segment=32, steps=args.train_steps)["updates_per_s"]
            row["train_demo"] = run_worker("train", args.train_threads, config=demo, hparams=demo_hp, batch_size=8, segment=None, steps=args.train_steps)["updates_per_s"]
        rows[decoder] = row
        print(f"  {decoder}: done (load {os.getloadavg()[0]:.1f})", file=sys.stderr)

    base = rows.get("hifigan")
    print(f"\nPaper-scale VISinger per decoder, random weights; {args.seconds:g} s score, median of {args.repeats} calls after a warm-up;")
    print(f"RTF = compute s per audio s (x = times lower than hifigan in this run); training: batch 4 x 32 frames (paper), batch 8 (demo), {args.train_threads} threads\n")
    head = ["decoder", "decoder params", "inference params"]
    for threads in args.threads:
        head += [f"RTF whole, {threads} thr", f"RTF decoder, {threads} thr"]
    head += [f"peak RSS {args.long_seconds:g} s song (MiB)", "train upd/s paper", "train upd/s demo"]
    print("| " + " | ".join(head) + " |")
    print("|" + "---|" * len(head))

    def ratio(value: float, key: str) -> str:
        return f" ({base[key] / value:.1f}x)" if base is not None and value > 0 and key in base else ""

    for decoder, row in rows.items():
        cells = [f"`{decoder}`", f"{row['decoder_parameters'] / 1e6:.2f} M", f"{row['inference_parameters'] / 1e6:.2f} M"]
        for threads in args.threads:
            cells += [f"{row[f'rtf_{threads}']:.3f}{ratio(row[f'rtf_{threads}'], f'rtf_{threads}')}",
                      f"{row[f'decoder_rtf_{threads}']:.3f}{ratio(row[f'decoder_rtf_{threads}'], f'decoder_rtf_{threads}')}"]  # fmt: skip
        cells.append(f"{row['peak_rss_mb']:.0f}" if "peak_rss_mb" in row else "-")
        cells += [f"{row[k]:.3f}" if k in row else "-" for k in ("train_paper", "train_demo")]
        print("| " + " | ".join(cells) + " |")
    print("\nconfigs: " + "; ".join(f"{d}: {r['config']}" for d, r in rows.items()))
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    print(f"load average at the end {load} (1/5/15 min)")


if __name__ == "__main__":
    main()
