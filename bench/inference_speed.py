"""Inference speed and memory on CPU: real-time factor per stage, peak RSS, for a synthetic score.

    python bench/inference_speed.py [--config config/models/visinger.yaml] [--seconds 30] [--long_seconds 180]
                                    [--threads 1 2] [--repeats 3] [--long_note_seconds 600] [--leading_rest_seconds 60]
    python bench/inference_speed.py --memory_only      # the memory table alone (no speed cases)

The generator is built from `--config` (the paper-scale VISinger by default) with random weights:
speed does not depend on what the weights learnt. The scores are generated here: phrases of 6-10
Hangul syllables (0.25-0.75 s each, MIDI 60-72) separated by 0.5 s rests, cut to exactly the asked
length, so the synthesizer renders phrase by phrase as it does a real song.

Every case runs in a fresh subprocess, so that `torch.set_num_threads` applies from the start and
`ru_maxrss` (the process's peak resident memory) belongs to that case alone:
- speed: one untimed warm-up call (its time is reported as "first call"), then `--repeats`
  timed calls of `SingingSynthesizer.synthesize`; medians of the real-time factor (seconds of
  compute per second of audio) in total and per stage (its `timings`: front end, acoustic model,
  decoder);
- memory: one call on the `--seconds` score and one on the `--long_seconds` score (one thread); peak
  RSS of the whole process (Python, torch and the model included) and, beside it, the RSS once the
  model is built and the front end loaded, so the growth due to the song shows. Both with the oneDNN
  primitive-cache limit that inference/visinger.py sets (`limit_onednn_primitive_cache`) and with
  oneDNN's default (1024 entries), under which memory grows with the number of phrases;
- bounded memory on any score: one call on a single `--long_note_seconds` note (0.5 s of rest on
  each side) and on a song of `--seconds` after a `--leading_rest_seconds` rest, scores that are one
  phrase each and are rendered in pieces (inference/synthesis.py); their peak should stay under
  the 3-minute song's.
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

from config.threads import apply_thread_policy  # noqa: E402

apply_thread_policy()  # before torch is imported: waiting OpenMP threads sleep instead of spinning (config/threads.py)

import argparse  # noqa: E402
import json  # noqa: E402
import os  # noqa: E402
import platform  # noqa: E402
import random  # noqa: E402
import resource  # noqa: E402
import statistics  # noqa: E402
import subprocess  # noqa: E402
import time  # noqa: E402

from inference.synthesis import ONEDNN_CACHE_VARIABLE  # noqa: E402
from preprocessor.score import REST, Note  # noqa: E402

SYLLABLES = "산책길에노을빛이물들고바람이불어와요나무사이로별들이반짝여요"
PHRASE_REST_SECONDS = 0.5
RESULT_PREFIX = "RESULT "
ONEDNN_DEFAULT_CAPACITY = 1024  # oneDNN's own default, what a process gets without the CLI's limit


def synthetic_score(seconds: float, seed: int = 0) -> list[Note]:
    """Contiguous notes from 0 to exactly `seconds`: sung phrases separated by rests (deterministic)."""
    rng = random.Random(seed)
    notes: list[Note] = []
    time_s, syllable = 0.0, 0
    while time_s < seconds:
        for _ in range(rng.randint(6, 10)):
            duration = rng.choice((0.25, 0.375, 0.5, 0.75))
            notes.append(Note(time_s, time_s + duration, rng.randint(60, 72), SYLLABLES[syllable % len(SYLLABLES)]))
            time_s += duration
            syllable += 1
            if time_s >= seconds:
                break
        else:
            notes.append(Note(time_s, time_s + PHRASE_REST_SECONDS, 0, REST))
            time_s += PHRASE_REST_SECONDS
    # Cut the last note at the asked length (drop notes that would start after it).
    notes = [n for n in notes if n.start < seconds]
    last = notes[-1]
    notes[-1] = Note(last.start, seconds, last.pitch, last.lyric)
    return notes


def long_note_score(seconds: float) -> list[Note]:
    """One sung note of `seconds` between two 0.5 s rests: a single phrase (nothing to cut at)."""
    return [Note(0.0, 0.5, 0, REST), Note(0.5, 0.5 + seconds, 64, "아"), Note(0.5 + seconds, 1.0 + seconds, 0, REST)]


def leading_rest_score(rest_seconds: float, song_seconds: float) -> list[Note]:
    """A `rest_seconds` rest, then the synthetic song: the first phrase holds the whole rest."""
    song = synthetic_score(song_seconds)
    return [Note(0.0, rest_seconds, 0, REST)] + [Note(n.start + rest_seconds, n.end + rest_seconds, n.pitch, n.lyric) for n in song]


SCORES = {"song": lambda seconds, extra: synthetic_score(seconds), "long_note": lambda seconds, extra: long_note_score(seconds),
          "leading_rest": lambda seconds, extra: leading_rest_score(extra, seconds)}


def _rss_mb() -> float:
    """Current resident memory of this process (Linux /proc), in MiB."""
    with open("/proc/self/statm") as handle:
        resident_pages = int(handle.read().split()[1])
    return resident_pages * os.sysconf("SC_PAGE_SIZE") / 2**20


def _peak_rss_mb() -> float:
    return resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024  # KiB on Linux


def worker(config_path: str, seconds: float, threads: int, repeats: int, warmup: bool, kind: str = "song", extra: float = 0.0) -> dict:
    """One case in this (fresh) process: build the model, render the score, report timings and memory."""
    import torch

    torch.set_num_threads(threads)
    from config.loader import config_section, load_config
    from inference.synthesis import SingingSynthesizer, limit_onednn_primitive_cache

    limit_onednn_primitive_cache()  # as inference/visinger.py does
    from modules.visinger import VISingerGenerator
    from preprocessor.audio import AudioSettings
    from tasks.visinger_task import generator_config_from

    config = load_config(config_path)
    audio = config_section(config, AudioSettings, "audio")
    torch.manual_seed(0)
    generator = VISingerGenerator.from_config(generator_config_from(config)).eval()
    synthesizer = SingingSynthesizer(generator, audio.sample_rate, audio.hop_size)
    notes = SCORES[kind](seconds, extra)
    synthesizer.frontend.phonemize(notes[:2])  # load g2pk's dictionaries now: they are not the song's memory
    rss_model = _rss_mb()
    runs, first_seconds = [], None
    for index in range(repeats + int(warmup)):
        started = time.perf_counter()
        result = synthesizer.synthesize(notes, source="<synthetic>", seed=index)
        elapsed = time.perf_counter() - started
        if warmup and index == 0:
            first_seconds = elapsed
            continue
        runs.append({"total": elapsed, **{stage: value for stage, value in result.timings.items()}})
    return {
        "seconds": seconds,
        "kind": kind,
        "extra": extra,
        "threads": threads,
        "audio_seconds": len(result.wav) / result.sample_rate,
        "phrases": result.phrases,
        "notes": len(notes),
        "runs": runs,
        "first_call_seconds": first_seconds,
        "rss_after_model_mb": rss_model,
        "peak_rss_mb": _peak_rss_mb(),
        "parameters": sum(p.numel() for p in generator.parameters()),
        "onednn_cache": os.environ.get(ONEDNN_CACHE_VARIABLE),
    }


def run_case(
    config: str, seconds: float, threads: int, repeats: int, warmup: bool, onednn_cache: int | None = None, kind: str = "song", extra: float = 0.0
) -> dict:
    """`worker` in a fresh Python, one thread count from its first line (OMP/MKL read the variables at start).

    onednn_cache: oneDNN's primitive cache capacity for this case; None = what inference/visinger.py sets.
    """
    env = dict(os.environ, OMP_NUM_THREADS=str(threads), MKL_NUM_THREADS=str(threads))
    env.pop(ONEDNN_CACHE_VARIABLE, None)
    if onednn_cache is not None:
        env[ONEDNN_CACHE_VARIABLE] = str(onednn_cache)
    command = [
        sys.executable, __file__, "--worker", "--config", config, "--seconds", str(seconds), "--threads", str(threads), "--repeats", str(repeats),
        "--kind", kind, "--extra", str(extra),
    ]
    if warmup:
        command.append("--warmup")
    process = subprocess.run(command, env=env, cwd=REPO_ROOT, capture_output=True, text=True)
    if process.returncode != 0:
        raise RuntimeError(f"worker failed ({' '.join(command)}):\n{process.stderr[-3000:]}")
    line = next(line for line in reversed(process.stdout.splitlines()) if line.startswith(RESULT_PREFIX))
    return json.loads(line[len(RESULT_PREFIX):])


def machine() -> str:
    model = "unknown CPU"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    import torch

    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else os.cpu_count()
    load = " / ".join(f"{x:.2f}" for x in os.getloadavg())
    return (
        f"{model}; {usable} usable cores ({os.cpu_count()} online); torch {torch.__version__}; "
        f"Python {platform.python_version()}; load average at start {load} (1/5/15 min)"
    )


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--config", default=str(REPO_ROOT / "config" / "models" / "visinger.yaml"))
    parser.add_argument("--seconds", type=float, default=30.0, help="score length of the speed cases (and the short memory case)")
    parser.add_argument("--long_seconds", type=float, default=180.0, help="score length of the long memory case")
    parser.add_argument("--threads", type=int, nargs="+", default=[1, 2])
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--long_note_seconds", type=float, default=600.0, help="length of the one-note memory case (0: skip)")
    parser.add_argument("--leading_rest_seconds", type=float, default=60.0, help="leading rest of the rest-then-song memory case (0: skip)")
    parser.add_argument("--memory_only", action="store_true", help="skip the speed cases and the oneDNN-default memory cases")
    parser.add_argument("--worker", action="store_true", help=argparse.SUPPRESS)
    parser.add_argument("--kind", default="song", choices=sorted(SCORES), help=argparse.SUPPRESS)
    parser.add_argument("--extra", type=float, default=0.0, help=argparse.SUPPRESS)
    parser.add_argument("--warmup", action="store_true", help=argparse.SUPPRESS)
    args = parser.parse_args()
    if args.worker:
        print(RESULT_PREFIX + json.dumps(worker(args.config, args.seconds, args.threads[0], args.repeats, args.warmup, args.kind, args.extra)))
        return

    print(f"machine: {machine()}")
    print(f"model: {Path(args.config).relative_to(REPO_ROOT) if Path(args.config).is_relative_to(REPO_ROOT) else args.config}, random weights")
    speed = []
    for threads in [] if args.memory_only else args.threads:
        case = run_case(args.config, args.seconds, threads, args.repeats, warmup=True)
        speed.append(case)
        print(f"  speed, {args.seconds:g} s score, {threads} thread(s): done", file=sys.stderr)
    memory_threads = min(args.threads)
    memory = []
    for onednn_cache in (None,) if args.memory_only else (None, ONEDNN_DEFAULT_CAPACITY):
        for seconds in (args.seconds, args.long_seconds):
            memory.append(run_case(args.config, seconds, memory_threads, 1, warmup=False, onednn_cache=onednn_cache))
            print(f"  memory, {seconds:g} s score, oneDNN cache {memory[-1]['onednn_cache']}: done", file=sys.stderr)
    if args.long_note_seconds > 0:
        memory.append(run_case(args.config, args.long_note_seconds, memory_threads, 1, warmup=False, kind="long_note"))
    if args.leading_rest_seconds > 0:
        memory.append(run_case(args.config, args.seconds, memory_threads, 1, warmup=False, kind="leading_rest", extra=args.leading_rest_seconds))

    if speed:
        _print_speed(speed, args.repeats)
    _print_memory(memory, memory_threads)


def _label(case: dict) -> str:
    if case.get("kind") == "long_note":
        return f"one {case['seconds']:g} s note ({case['phrases']} phrase)"
    if case.get("kind") == "leading_rest":
        return f"{case['extra']:g} s rest + {case['seconds']:g} s song ({case['phrases']} phrases)"
    return f"{case['seconds']:g} s ({case['phrases']} phrases)"


def _print_speed(speed: list[dict], repeats: int) -> None:
    first = speed[0]
    print(f"parameters: {first['parameters'] / 1e6:.1f} M; score: {first['notes']} notes, {first['phrases']} phrases, {first['audio_seconds']:.1f} s of audio\n")
    print(f"Real-time factor (compute seconds per audio second; median of {repeats} after one warm-up call)\n")
    print("| score | threads | total | front end | acoustic model | decoder | first call (s) |")
    print("|---|---|---|---|---|---|---|")
    for case in speed:
        audio_seconds = case["audio_seconds"]

        def rtf(stage: str) -> str:
            return f"{statistics.median(run[stage] for run in case['runs']) / audio_seconds:.3f}"

        print(
            f"| {case['seconds']:g} s | {case['threads']} | {rtf('total')} | {rtf('frontend')} | {rtf('acoustic')} | {rtf('decoder')} "
            f"| {case['first_call_seconds']:.1f} |"
        )


def _print_memory(memory: list[dict], memory_threads: int) -> None:
    print(f"\nPeak memory (one call in a fresh process, {memory_threads} thread(s))\n")
    print("| score | oneDNN primitive cache | peak RSS (MiB) | RSS ready: model + front end loaded (MiB) | growth during synthesis (MiB) |")
    print("|---|---|---|---|---|")
    for case in memory:
        growth = case["peak_rss_mb"] - case["rss_after_model_mb"]
        cache = f"{case['onednn_cache']} (CLI)" if case["onednn_cache"] != str(ONEDNN_DEFAULT_CAPACITY) else f"{ONEDNN_DEFAULT_CAPACITY} (oneDNN default)"
        print(
            f"| {_label(case)} | {cache} | {case['peak_rss_mb']:.0f} "
            f"| {case['rss_after_model_mb']:.0f} | {growth:.0f} |"
        )


if __name__ == "__main__":
    main()
