"""Several singers in one model: does each voice sing in tune, and do the voices differ where they should?

    python bench/speaker_voices.py --exp_name demo_multi_visinger [--song kr008a] [--out_dir outputs/speaker_voices]

For a multi-speaker model trained on config/datasets/svs/demo_multi (voices `demo` and `demo_low`), the
demo corpus's test song is sung from its score (MIDI + the Hangul lyric file) in each voice's key (`demo`
in the original key, `demo_low`'s score a fifth lower), by every voice of the model and by the 50/50 mix.
Measured on each render with the tools of evaluation and binarization (Praat F0 at the model's hop, the
training log-mel):
- in tune: share of the voiced frames under a note within 50 cents of it (`inference.metrics.in_tune_share`);
- median F0 (Hz) of the voiced frames;
- spectral centroid (Hz): the mean, over voiced frames, of the centroid of the linear magnitude spectrum;
- envelope distance to the recording of this key: the RMS difference (natural-log units) between the
  render's mean log-mel over voiced frames and that of the recording sung in the same key (the same
  notes, so the pitch is the same and the difference is the envelope's);
- per key, where the mix lies between the two voices: the distance between the two voices' mean log-mel
  profiles, and the mix's position along the line from the first voice's profile to the second's
  (0 = the first, 1 = the second; the projection of the mix's profile), with its distance off that line.
The recordings themselves are measured too (rows `recording`).
"""
from __future__ import annotations

import sys
from pathlib import Path

REPO_ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO_ROOT))  # the repo root is the import root

import argparse  # noqa: E402
import os  # noqa: E402

import numpy as np  # noqa: E402

VOICE_DIRS = {"demo": REPO_ROOT / "data/raw/demo", "demo_low": REPO_ROOT / "data/raw/demo_low"}


def voiced_profile(wav: np.ndarray, audio, f0_hz: np.ndarray):
    """(mean log-mel over voiced frames [n_mels], mean spectral centroid over voiced frames in Hz)."""
    import torch

    from preprocessor.audio import SpectrogramExtractor

    a = audio
    extractor = SpectrogramExtractor(a.sample_rate, a.n_fft, a.hop_size, a.win_size, a.n_mels, a.fmin, a.fmax)
    with torch.no_grad():
        tensor = torch.from_numpy(np.ascontiguousarray(wav, dtype=np.float32))[None]
        mel = extractor.mel(tensor)[0].numpy()  # [n_mels, T]
        linear = extractor.linear(tensor)[0].numpy()  # [F, T]
    frames = min(mel.shape[1], len(f0_hz))
    voiced = f0_hz[:frames] > 0
    freqs = np.linspace(0, a.sample_rate / 2, linear.shape[0])[:, None]
    centroid = (freqs * linear[:, :frames]).sum(0) / np.maximum(linear[:, :frames].sum(0), 1e-9)
    return mel[:, :frames][:, voiced].mean(1), float(centroid[voiced].mean())


def measure(wav: np.ndarray, audio, score_pitch: np.ndarray) -> dict:
    from inference.metrics import in_tune_share
    from preprocessor.audio import extract_f0

    frames = len(wav) // audio.hop_size
    f0 = extract_f0(wav, audio.sample_rate, audio.hop_size, frames, audio.f0_min, audio.f0_max, audio.f0_extractor).f0_hz
    profile, centroid = voiced_profile(wav, audio, f0)
    tune = in_tune_share(f0, score_pitch)
    return {"in_tune": tune.in_tune_share, "median_f0": float(np.median(f0[f0 > 0])), "centroid": centroid, "profile": profile}


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--exp_name", default="demo_multi_visinger")
    parser.add_argument("--work_dir_root", type=Path, default=REPO_ROOT / "checkpoints")
    parser.add_argument("--song", default="kr008a", help="recording id of the demo corpus (kr008a: the test song)")
    parser.add_argument("--out_dir", type=Path, default=None, help="also write the renders here")
    args = parser.parse_args()
    from config.threads import apply_thread_policy

    apply_thread_policy()
    from bench.machine import machine_line
    from inference.api import Singer
    from preprocessor.atomic_io import write_wav_atomic
    from preprocessor.audio import load_wav

    singer = Singer.load(args.work_dir_root / args.exp_name, device="cpu")
    audio = singer.audio
    names = singer.speakers
    print(f"model {singer.source}; speakers {', '.join(names)}")
    recordings = {}
    for voice, folder in VOICE_DIRS.items():
        recordings[voice] = load_wav(folder / "korean/wav" / f"{args.song}.wav", audio.sample_rate)
    rows = []
    for key_voice, folder in VOICE_DIRS.items():
        score, lyrics = folder / "korean/mid" / f"{args.song}.mid", folder / "korean/lyric" / f"{args.song}.txt"
        choices = list(names) + [f"{names[0]}:0.5,{names[1]}:0.5"]
        renders = {}
        for choice in choices:
            sung = singer.sing(score, lyrics, speaker=choice, seed=0)
            pitch = np.repeat([n.pitch for n in sung.synthesis.notes], sung.synthesis.note_frames)
            renders[choice] = (sung.wav, pitch)
            if args.out_dir:
                write_wav_atomic(args.out_dir / f"{args.song}_{key_voice}_key_{choice.replace(':', '').replace(',', '_')}.wav", sung.wav, sung.sample_rate)
        reference = {voice: measure(wav[: len(renders[choices[0]][0])], audio, renders[choices[0]][1]) for voice, wav in recordings.items()}
        rows.append((f"{key_voice}'s key", "recording " + key_voice, reference[key_voice], reference))
        for choice, (wav, pitch) in renders.items():
            rows.append((f"{key_voice}'s key", choice, measure(wav, audio, pitch), reference))
    print("| score | sung by | in tune | median F0 (Hz) | spectral centroid (Hz) | envelope dist. to this key's recording |")
    print("|---|---|---:|---:|---:|---:|")
    rms = lambda x: float(np.sqrt(np.mean(x**2)))  # noqa: E731
    for key, who, m, reference in rows:
        own = reference[key.split("'")[0]]["profile"]
        print(f"| {key} | {who} | {100 * m['in_tune']:.1f} % | {m['median_f0']:.1f} | {m['centroid']:.0f} | {rms(m['profile'] - own):.3f} |")
    for key in dict.fromkeys(k for k, *_ in rows):
        sung = {who: m["profile"] for k, who, m, _ in rows if k == key and not who.startswith("recording")}
        first, second, mix = (sung[c] for c in list(sung))
        line = second - first
        position = float(np.dot(mix - first, line) / np.dot(line, line))
        off = rms(mix - (first + position * line))
        print(f"{key}: voice profiles {rms(line):.3f} apart; the 50/50 mix lies at {position:.2f} of the way from {names[0]} to {names[1]} ({off:.3f} off the line)")
    print(f"machine: {machine_line()}; load average {os.getloadavg()[0]:.2f} (others shared the machine)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
