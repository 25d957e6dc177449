"""VISinger against the two-stage baseline (FS2 singer + HiFi-GAN): one metrics table, sizes and CPU speed.

    python bench/compare_models.py --visinger_exp csd_visinger --fs2_exp csd_fs2 --hifigan_exp csd_hifigan
    python bench/compare_models.py --no_speed --visinger_exp ... --out comparison.md   # the metrics table only
    python bench/compare_models.py --scale demo --seconds 20 --threads 1               # sizes and speed only

Metrics: the `mean` row of each system's `metrics.json` (`inference.evaluate`), from the newest
`infer/step<N>/` of its experiment, which `run.py --infer` writes on the same test split:

    VISinger (score)              <visinger_exp>/infer/step<N>/score       run.py --exp_name V --infer
    VISinger (posterior)          <visinger_exp>/infer/step<N>/posterior   (reconstruction upper bound)
    FS2 + HiFi-GAN                <fs2_exp>/infer/step<N>/score            run.py --exp_name F --infer --hparams "infer.vocoder_exp=H"
    GT mel + HiFi-GAN             <hifigan_exp>/infer/step<N>/gt_mel       run.py --exp_name H --infer (the vocoder's upper bound)

Sizes and speed: the models are built from the `--scale` configs (paper: visinger.yaml, fs2_singer.yaml,
hifigan.yaml; demo: the *_demo.yaml) with random weights (speed does not depend on what they learnt)
and sing the same synthetic score (bench/inference_speed.py's) through the same `SingingSynthesizer`,
in this process with `--threads` intra-op threads: one untimed warm-up, then the median of `--repeats`
calls. The real-time factor is compute seconds per second of audio, in total and per stage (front end,
acoustic = everything before the waveform stage, decoder = HiFi-GAN in both systems). Parameters: all
that is trained (VISinger's generator; FS2 + HiFi-GAN generator; discriminators excluded) and what
inference runs (VISinger without its posterior encoder and phoneme predictor).
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
import math  # noqa: E402
import re  # noqa: E402
import statistics  # noqa: E402
import time  # noqa: E402
from dataclasses import dataclass  # noqa: E402
from typing import Any  # noqa: E402

from config.errors import UserInputError, run_cli  # noqa: E402

MODELS = REPO_ROOT / "config" / "models"
SCALES = {
    "paper": ("visinger.yaml", "fs2_singer.yaml", "hifigan.yaml"),
    "demo": ("visinger_demo.yaml", "fs2_singer_demo.yaml", "hifigan_demo.yaml"),
}
# (row label, which experiment flag, subfolder of infer/step<N>/, how that folder is made)
SYSTEMS = (
    ("VISinger (score)", "visinger_exp", "score", "run.py --exp_name {exp} --infer"),
    ("VISinger (posterior, upper bound)", "visinger_exp", "posterior", "run.py --exp_name {exp} --infer"),
    ("FS2 + HiFi-GAN", "fs2_exp", "score", 'run.py --exp_name {exp} --infer --hparams "infer.vocoder_exp=<hifigan exp>"'),
    ("GT mel + HiFi-GAN (upper bound)", "hifigan_exp", "gt_mel", "run.py --exp_name {exp} --infer"),
)
VISINGER_TRAINING_ONLY = ("posterior_encoder", "phoneme_predictor")  # generator parts inference never runs


# ---- metrics --------------------------------------------------------------------------------------------


def newest_infer_dir(exp_dir: Path) -> Path | None:
    """`exp_dir/infer/step<N>` with the largest N, or None."""
    steps = []
    for folder in (exp_dir / "infer").glob("step*"):
        match = re.fullmatch(r"step(\d+)", folder.name)
        if match and folder.is_dir():
            steps.append((int(match.group(1)), folder))
    return max(steps)[1] if steps else None


@dataclass(frozen=True)
class MetricsRow:
    label: str
    mean: dict[str, Any]
    path: Path


def collect_rows(work_dir_root: Path, experiments: dict[str, str | None]) -> list[MetricsRow]:
    """The mean row of every system whose experiment is named in `experiments` (keys as `SYSTEMS`), in `SYSTEMS` order."""
    rows = []
    for label, flag, source, how in SYSTEMS:
        exp = experiments.get(flag)
        if not exp:
            continue
        exp_dir = work_dir_root / exp
        infer_dir = newest_infer_dir(exp_dir)
        path = infer_dir / source / "metrics.json" if infer_dir else exp_dir / "infer" / "step<N>" / source / "metrics.json"
        if infer_dir is None or not path.is_file():
            raise UserInputError(f"--{flag} {exp}: {path} not found; render the test split first: python tasks/runs/{how.format(exp=exp)}")
        mean = json.loads(path.read_text(encoding="utf-8"))["mean"]
        rows.append(MetricsRow(label, mean, path))
    return rows


def _cell(value: Any, percent: bool) -> str:
    if value is None or (isinstance(value, float) and not math.isfinite(value)):
        return "n/a"
    return f"{100.0 * value:.1f}" if percent else f"{value:.2f}"


def metrics_table(rows: list[MetricsRow]) -> str:
    """Markdown: one row per system, the columns of `inference.evaluate.format_table` (NaN/null as n/a)."""
    from inference.evaluate import TABLE_COLUMNS

    lines = [
        "| system | " + " | ".join(title for _, title, _ in TABLE_COLUMNS) + " | items |",
        "| --- | " + " | ".join("---:" for _ in TABLE_COLUMNS) + " | ---: |",
    ]
    for row in rows:
        cells = " | ".join(_cell(row.mean.get(key), percent) for key, _, percent in TABLE_COLUMNS)
        lines.append(f"| {row.label} | {cells} | {row.mean.get('items', 'n/a')} |")
    return "\n".join(lines)


# ---- sizes and speed --------------------------------------------------------------------------------------


def count_parameters(module) -> int:
    return sum(p.numel() for p in module.parameters() if p.requires_grad)


@dataclass(frozen=True)
class SpeedRow:
    system: str
    trained_parameters: int
    inference_parameters: int
    decoder_parameters: int  # the waveform stage (HiFi-GAN) alone
    rtf_total: float
    rtf_stages: dict[str, float]
    audio_seconds: float


def build_singers(scale: str) -> dict[str, tuple[Any, int, int, Any]]:
    """`system -> (model with the VISinger inference interface, trained params, inference params, AudioSettings)`, random weights."""
    import torch

    from config.loader import config_section, load_config
    from inference.pair import AcousticVocoderPair
    from modules.fs2_singer import FS2Singer
    from modules.visinger import VISingerGenerator
    from preprocessor.audio import AudioSettings
    from tasks.fs2_task import acoustic_config_from
    from tasks.hifigan_task import vocoder_config_from
    from tasks.visinger_task import generator_config_from

    visinger_yaml, fs2_yaml, hifigan_yaml = (MODELS / name for name in SCALES[scale])
    torch.manual_seed(0)
    visinger_config = load_config(visinger_yaml)
    visinger = VISingerGenerator.from_config(generator_config_from(visinger_config)).eval()
    visinger_trained = count_parameters(visinger)
    visinger_inference = visinger_trained - sum(count_parameters(getattr(visinger, name)) for name in VISINGER_TRAINING_ONLY)
    fs2_config, hifigan_config = load_config(fs2_yaml), load_config(hifigan_yaml)
    pair = AcousticVocoderPair(FS2Singer.from_config(acoustic_config_from(fs2_config)), vocoder_config_from(hifigan_config).build()).eval()
    pair_parameters = count_parameters(pair)
    return {
        "VISinger": (visinger, visinger_trained, visinger_inference, config_section(visinger_config, AudioSettings, "audio")),
        "FS2 + HiFi-GAN": (pair, pair_parameters, pair_parameters, config_section(fs2_config, AudioSettings, "audio")),
    }


def measure_speed(scale: str, seconds: float, threads: int, repeats: int) -> list[SpeedRow]:
    """Real-time factors of both systems on the same synthetic score (see the module docstring)."""
    import torch

    from bench.inference_speed import synthetic_score
    from inference.synthesis import SingingSynthesizer, limit_onednn_primitive_cache
    from preprocessor.text.korean import KoreanFrontend

    limit_onednn_primitive_cache()
    torch.set_num_threads(threads)
    notes = synthetic_score(seconds)
    frontend = KoreanFrontend()
    frontend.phonemize(notes[:2])  # load g2pk's dictionaries outside the timings
    rows = []
    for system, (model, trained, inference, audio) in build_singers(scale).items():
        synthesizer = SingingSynthesizer(model, audio.sample_rate, audio.hop_size, frontend=frontend)
        runs = []
        for index in range(repeats + 1):
            started = time.perf_counter()
            result = synthesizer.synthesize(notes, source="<synthetic>", seed=index)
            elapsed = time.perf_counter() - started
            if index > 0:  # the first call warms up (oneDNN primitives, allocator)
                runs.append({"total": elapsed, **result.timings})
        audio_seconds = len(result.wav) / result.sample_rate
        stages = {stage: statistics.median(run[stage] for run in runs) / audio_seconds for stage in result.timings}
        total = statistics.median(run["total"] for run in runs) / audio_seconds
        rows.append(SpeedRow(system, trained, inference, count_parameters(model.waveform_stage), total, stages, audio_seconds))
    return rows


def speed_table(rows: list[SpeedRow]) -> str:
    lines = [
        "| system | trained params | params at inference | of which HiFi-GAN | RTF total | RTF front end | RTF acoustic | RTF decoder (HiFi-GAN) |",
        "| --- | ---: | ---: | ---: | ---: | ---: | ---: | ---: |",
    ]
    for row in rows:
        s = row.rtf_stages
        lines.append(
            f"| {row.system} | {row.trained_parameters / 1e6:.2f} M | {row.inference_parameters / 1e6:.2f} M | "
            f"{row.decoder_parameters / 1e6:.2f} M | {row.rtf_total:.3f} | "
            f"{s.get('frontend', math.nan):.3f} | {s.get('acoustic', math.nan):.3f} | {s.get('decoder', math.nan):.3f} |"
        )
    return "\n".join(lines)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--work_dir_root", type=Path, default=None, help="where the experiments live (default: $SVS_CHECKPOINTS_ROOT, else ./checkpoints)")
    parser.add_argument("--visinger_exp", help="VISinger experiment (rows: score, posterior)")
    parser.add_argument("--fs2_exp", help="FS2 singer experiment rendered with a HiFi-GAN (row: FS2 + HiFi-GAN)")
    parser.add_argument("--hifigan_exp", help="HiFi-GAN experiment (row: GT mel + HiFi-GAN)")
    parser.add_argument("--scale", choices=tuple(SCALES), default="paper", help="configs of the size/speed comparison (default: paper)")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the synthetic score for the speed test")
    parser.add_argument("--threads", type=int, default=1, help="torch intra-op threads for the speed test")
    parser.add_argument("--repeats", type=int, default=3, help="timed calls per system (after one warm-up)")
    parser.add_argument("--no_speed", action="store_true", help="only the metrics table")
    parser.add_argument("--out", type=Path, help="also write the markdown to this file")
    return parser


def main() -> int:
    args = build_parser().parse_args()
    if args.seconds <= 0 or args.threads < 1 or args.repeats < 1:
        raise UserInputError("--seconds must be > 0, --threads and --repeats >= 1")
    sections = []
    experiments = {"visinger_exp": args.visinger_exp, "fs2_exp": args.fs2_exp, "hifigan_exp": args.hifigan_exp}
    if any(experiments.values()):
        from model_io.checkpoint_file import checkpoints_root

        rows = collect_rows(checkpoints_root(args.work_dir_root), experiments)
        sections.append("## Test-set metrics (mean over items)\n\n" + metrics_table(rows) + "\n\n" + "\n".join(f"- {r.label}: {r.path}" for r in rows))
    if not args.no_speed:
        from bench.machine import machine_line

        speed = measure_speed(args.scale, args.seconds, args.threads, args.repeats)
        sections.append(
            f"## Size and CPU speed ({args.scale} configs, random weights, {speed[0].audio_seconds:.1f} s score, "
            f"{args.threads} thread(s), median of {args.repeats})\n\n{speed_table(speed)}\n\n{machine_line()}"
        )
    if not sections:
        raise UserInputError("nothing to compare: name experiments (--visinger_exp / --fs2_exp / --hifigan_exp) or drop --no_speed")
    text = "\n\n".join(sections) + "\n"
    print(text)
    if args.out:
        from preprocessor.atomic_io import write_text_atomic

        write_text_atomic(args.out, text)
    return 0


if __name__ == "__main__":
    run_cli(main)
