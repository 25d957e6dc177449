"""Export a singer's inference graph to ONNX, as a pack folder that also holds the ONNX files and their manifest.

    python inference/export_onnx.py --exp_name csd_visinger --out packed/csd_visinger_onnx
    python inference/export_onnx.py --ckpt packed/csd_visinger --out packed/csd_visinger_onnx      # a pack or a checkpoint file
    python inference/export_onnx.py --exp_name csd_fs2 --vocoder_exp csd_hifigan --out packed/pair_onnx   # the two-stage pair
    python inference/export_onnx.py --ckpt packed/csd_fs2_hifigan --out packed/pair_onnx                # a pair pack
    python inference/visinger.py --ckpt packed/csd_visinger_onnx --backend onnx --midi song.mid --out song.wav

`--out` receives the usual pack files (so `--backend torch` sings from it too) plus
`acoustic.onnx` (score, F0 with NaN = predict [+ prior noise] -> latent, F0), `decoder.onnx` (latent
[+ F0, start phase, source noise, as the decoder needs] -> waveform) and `onnx_manifest.json` (inputs and outputs with dtypes and named dynamic
axes, sample rate, hop, phone set, how the noise is drawn, the decoder's context for chunked
decoding): everything a program needs to call the graphs without this repository
(`modules/export_graphs.py` documents the graphs). Every VISinger decoder (`model.decoder`: hifigan,
nsf_hifigan, ddsp, istft) and the pair's HiFi-GAN export; istft and ddsp through their DFT-matmul
paths (`modules.ddsp.core.export_ops_enabled`). Opset 17 by default (`--opset`, at least 17), the
phoneme count `P` and the frame count `T` dynamic, batch 1.

After writing, both graphs run once under onnxruntime on a test phrase and are compared with torch;
the largest waveform difference is printed. Exit code 2 with one line on a bad input; an existing
`--out` is replaced only when it is an earlier pack; a failure leaves no partial folder.

The exporter is PyTorch's TorchScript-based one (`dynamo=False`): the torch.export-based one
produced equivalent graphs but took ~100 s instead of ~6 s for the tiny test model on the shared
CI machine. The graphs hold no branch on a traced length (the tests run them at other lengths).
"""
from __future__ import annotations

import argparse
import json
import sys
import warnings
from pathlib import Path
from typing import Any, Sequence

sys.path.insert(0, str(Path(__file__).resolve().parents[1]))  # run from anywhere without PYTHONPATH

import torch  # noqa: E402

from config.errors import UserInputError, run_cli  # noqa: E402

MIN_OPSET = 17
DEFAULT_OPSET = 17
PARITY_TOLERANCE = 1e-3  # max |wav| difference, onnxruntime vs torch, with the same noise


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    source = parser.add_mutually_exclusive_group(required=True)
    source.add_argument("--exp_name", help="experiment under --work_dir_root (VISinger, or the FS2 singer with --vocoder_*)")
    source.add_argument("--ckpt", type=Path, help="a checkpoint file or a pack folder (VISinger or FS2 + HiFi-GAN pair)")
    vocoder = parser.add_mutually_exclusive_group()
    vocoder.add_argument("--vocoder_exp", help="HiFi-GAN experiment of an FS2 singer (the two-stage pair)")
    vocoder.add_argument("--vocoder_ckpt", type=Path, help="HiFi-GAN checkpoint file or pack of an FS2 singer")
    parser.add_argument("--work_dir_root", type=Path, default=None, help="where experiments live (default: $SVS_CHECKPOINTS_ROOT, else ./checkpoints)")
    parser.add_argument("--out", type=Path, required=True, help="the pack folder to write")
    parser.add_argument("--opset", type=int, default=DEFAULT_OPSET, help=f"ONNX opset (at least {MIN_OPSET})")
    return parser


# ---- the graphs ----------------------------------------------------------------------------------------


def _io(name: str, dtype: str, shape: Sequence[int | str], description: str) -> dict[str, Any]:
    return {"name": name, "dtype": dtype, "shape": list(shape), "description": description}


SCORE_INPUTS = [
    _io("phone_ids", "int64", [1, "P"], "phoneme ids (index into phone_set; a phrase padded with SP rest context at both ends)"),
    _io("note_pitch", "int64", [1, "P"], "MIDI pitch of each phoneme's note (0 = rest)"),
    _io("note_dur", "float32", [1, "P"], "duration of each phoneme's note, in frames"),
    _io("slur", "int64", [1, "P"], "1 where the phoneme continues a melisma"),
    _io("phone_frames", "int64", [1, "P"], "frames of each phoneme (T = their sum)"),
]
def speaker_input(n_speakers: int) -> dict[str, Any]:
    return _io(
        "speaker_weights", "float32", [1, n_speakers],
        "who sings: one weight per speaker (a mix of their embeddings, weights summing to 1; one speaker = one-hot)",
    )  # fmt: skip


def _example_speaker(n_speakers: int) -> torch.Tensor:
    return torch.full((1, n_speakers), 1.0 / n_speakers)


class _NamedInputs(torch.nn.Module):
    """A graph module whose positional inputs are the named ones (the exporter passes a tuple)."""

    def __init__(self, graph: torch.nn.Module, names: Sequence[str]) -> None:
        super().__init__()
        self.graph = graph
        self.names = list(names)

    def forward(self, *args):
        return self.graph(**dict(zip(self.names, args)))


def _example_score(n_phones: int) -> dict[str, Any]:
    """A random, well-formed phrase of 10 phonemes (the trace's example; the graphs take any length)."""
    rng = torch.Generator().manual_seed(0)
    frames = torch.randint(2, 7, (1, 10), generator=rng)
    return {
        "phone_ids": torch.randint(1, n_phones, (1, 10), generator=rng),
        "note_pitch": torch.randint(55, 75, (1, 10), generator=rng),
        "note_dur": frames.float() * 2,
        "slur": torch.zeros(1, 10, dtype=torch.long),
        "phone_frames": frames,
    }


def _export_graph(module, example: dict[str, Any], inputs: list[dict], outputs: list[dict], path: Path, opset: int, metadata: dict[str, str]) -> None:
    """Trace `module` on `example` (ordered as `inputs`) to `path`, the axes named in the specs dynamic."""
    import onnx

    names = [spec["name"] for spec in inputs]
    dynamic_axes = {
        spec["name"]: {axis: size for axis, size in enumerate(spec["shape"]) if isinstance(size, str)} for spec in [*inputs, *outputs]
    }
    dynamic_axes = {name: axes for name, axes in dynamic_axes.items() if axes}
    with warnings.catch_warnings(), torch.no_grad():
        warnings.simplefilter("ignore")  # the TorchScript exporter's deprecation and tracer notes
        torch.onnx.export(
            _NamedInputs(module, names).eval(), tuple(example[name] for name in names), str(path), dynamo=False, opset_version=opset,
            input_names=names, output_names=[spec["name"] for spec in outputs], dynamic_axes=dynamic_axes,
        )  # fmt: skip
    model = onnx.load(str(path))
    for key, value in metadata.items():
        entry = model.metadata_props.add()
        entry.key, entry.value = key, value
    onnx.save(model, str(path))


F0_INPUT = _io("given_f0", "float32", [1, "T"], "F0 in Hz to sing per frame (0 = unvoiced), NaN = the model's prediction; its length T = sum(phone_frames)")


def _visinger_graphs(generator):
    """(acoustic graph, its example, its inputs, its outputs, decoder graph, latent channels)."""
    from modules.export_graphs import DecoderGraph, VISingerAcousticGraph

    config = generator.config
    score = _example_score(config.n_phones)
    n_frames = int(score["phone_frames"].sum())
    acoustic_example = {**score, "given_f0": torch.full((1, n_frames), float("nan")),
                        "prior_noise": torch.randn(1, config.inter_channels, n_frames, generator=torch.Generator().manual_seed(1)),
                        "noise_scale": torch.tensor(0.667), "speaker_weights": _example_speaker(config.n_speakers)}  # fmt: skip
    acoustic_inputs = SCORE_INPUTS + [
        F0_INPUT,
        _io("prior_noise", "float32", [1, config.inter_channels, "T"], "standard normal noise of the prior sample"),
        _io("noise_scale", "float32", [], "prior temperature (0.667 as VITS; 0 = the prior mean)"),
    ] + ([speaker_input(config.n_speakers)] if config.n_speakers > 1 else [])  # fmt: skip
    acoustic_outputs = [
        _io("latent", "float32", [1, config.inter_channels, "T"], "latent z after the reverse flow: the decoder's input"),
        _io("f0", "float32", [1, "T"], "the F0 sung in Hz (the input's, its NaN frames predicted; 0 = unvoiced): the decoder's F0"),
    ]
    return (VISingerAcousticGraph(generator), acoustic_example, acoustic_inputs, acoustic_outputs,
            DecoderGraph(generator.decoder, generator.speaker_embedding), config.inter_channels)  # fmt: skip


def _pair_graphs(acoustic_model, vocoder):
    from modules.export_graphs import DecoderGraph, FS2AcousticGraph

    config = acoustic_model.config
    score = _example_score(config.n_phones)
    n_frames = int(score["phone_frames"].sum())
    example = {**score, "given_f0": torch.full((1, n_frames), float("nan")), "speaker_weights": _example_speaker(config.n_speakers)}
    inputs = SCORE_INPUTS + [F0_INPUT] + ([speaker_input(config.n_speakers)] if config.n_speakers > 1 else [])
    outputs = [
        _io("latent", "float32", [1, config.n_mels, "T"], "natural-log mel spectrogram: the vocoder's input"),
        _io("f0", "float32", [1, "T"], "the F0 sung in Hz (the input's, its NaN frames predicted; 0 = unvoiced): the vocoder's F0 with a harmonic source"),
    ]
    return FS2AcousticGraph(acoustic_model), example, inputs, outputs, DecoderGraph(vocoder), config.n_mels


DECODER_INPUTS = {
    "f0": lambda n_speakers: _io("f0", "float32", [1, "T"], "F0 in Hz of the same frames (the acoustic graph's f0)"),
    "start_phase": lambda n_speakers: _io(
        "start_phase", "float64", [1],
        "the harmonic phase in cycles before the first frame: remainder(sum(f0 of the earlier frames) * hop_size / sample_rate, 1); 0 for a whole phrase",
    ),  # fmt: skip
    "source_noise": lambda n_speakers: _io("source_noise", "float32", [1, 1, "S"], "standard normal noise of the decoder's noise source, S = T * hop_size"),
    "speaker_weights": speaker_input,
}


def export_graphs(kind: str, models: tuple, sample_rate: int, hop_size: int, out_dir: Path, opset: int, source: str) -> dict[str, Any]:
    """Write `acoustic.onnx`, `decoder.onnx` and the manifest into `out_dir`; returns the manifest.

    kind: "visinger" (`models = (generator,)`) or "fs2_hifigan" (`models = (fs2_singer, hifigan_generator)`).
    """
    from inference.onnx_backend import ACOUSTIC_ONNX, DECODER_ONNX, MANIFEST_FILE, ONNX_FORMAT, ONNX_FORMAT_VERSION, PHONE_SET_METADATA
    from preprocessor.atomic_io import write_text_atomic
    from preprocessor.text.phone_set import PHONE_SET

    if opset < MIN_OPSET:
        raise UserInputError(f"--opset {opset}: the graphs need opset {MIN_OPSET} or later; pass --opset {MIN_OPSET}")
    if kind == "visinger":
        graph, example, inputs, outputs, decoder, channels = _visinger_graphs(models[0])
        decoder_kind = models[0].config.decoder
    else:
        graph, example, inputs, outputs, decoder, channels = _pair_graphs(models[0], models[1])
        decoder_kind = "nsf_hifigan" if models[1].uses_f0 else "hifigan"
    n_speakers = (graph.generator.config if kind == "visinger" else graph.acoustic.config).n_speakers
    metadata = {PHONE_SET_METADATA: json.dumps(list(PHONE_SET), ensure_ascii=False), "sample_rate": str(sample_rate), "hop_size": str(hop_size)}
    _export_graph(graph, example, inputs, outputs, out_dir / ACOUSTIC_ONNX, opset, {**metadata, "graph": "acoustic"})

    decoder_frames = 16
    rng = torch.Generator().manual_seed(2)
    decoder_example = {
        "latent": torch.randn(1, channels, decoder_frames, generator=rng),
        "f0": torch.full((1, decoder_frames), 220.0),
        "start_phase": torch.tensor([0.25], dtype=torch.float64),
        "source_noise": torch.randn(1, 1, decoder_frames * hop_size, generator=rng),
        "speaker_weights": _example_speaker(n_speakers),
    }
    decoder_inputs = [_io("latent", "float32", [1, channels, "T"], "the acoustic graph's latent (any run of its frames)")]
    decoder_inputs += [DECODER_INPUTS[name](n_speakers) for name in decoder.input_names()[1:]]
    decoder_outputs = [_io("wav", "float32", [1, 1, "S"], "waveform in [-1, 1], S = T * hop_size")]
    _export_graph(decoder, decoder_example, decoder_inputs, decoder_outputs, out_dir / DECODER_ONNX, opset, {**metadata, "graph": "decoder"})

    manifest = {
        "format": ONNX_FORMAT,
        "version": ONNX_FORMAT_VERSION,
        "model": kind,
        "decoder": decoder_kind,
        "source": source,
        "opset": opset,
        "exported_with": {"torch": torch.__version__},
        "sample_rate": sample_rate,
        "hop_size": hop_size,
        "phone_set": list(PHONE_SET),
        "n_speakers": n_speakers,
        "prior_noise_channels": channels if kind == "visinger" else 0,
        "decoder_uses_f0": decoder.uses_f0,
        "decoder_uses_noise": decoder.uses_noise,
        "decoder_context_frames": int(decoder.decoder.context_frames()),
        "graphs": {
            "acoustic": {"file": ACOUSTIC_ONNX, "inputs": inputs, "outputs": outputs},
            "decoder": {"file": DECODER_ONNX, "inputs": decoder_inputs, "outputs": decoder_outputs},
        },
        "usage": [
            "One phrase at a time, batch 1: run acoustic, then decoder on its latent and f0; wav has T * hop_size samples.",
            "phone_frames come from the notes by the frame rule (preprocessor/text/frame_rule.py); this repository adds "
            "0.3 s of SP rest before and after every phrase and drops that audio.",
            "prior_noise and source_noise are standard normal; this repository draws prior_noise with torch.manual_seed(seed) "
            "then torch.randn(1, C, T) per phrase, and source_noise as modules.ddsp.core.white_noise's fixed sequence "
            "(block b of 16384 samples from torch.Generator().manual_seed(b)), restarting at every phrase.",
            "Chunked decoding: decode frames [a, b) with decoder_context_frames extra frames on each side (cut at the phrase's "
            "edges), the matching slices of f0 and source_noise and the start_phase of the first decoded frame, then drop the extra samples.",
        ],
    }
    write_text_atomic(out_dir / MANIFEST_FILE, json.dumps(manifest, indent=1, ensure_ascii=False))
    return manifest


def check_parity(out_dir: Path, kind: str, models: tuple, sample_rate: int, hop_size: int) -> float:
    """Max |wav| difference between onnxruntime and torch on a test phrase, the same noise given to both."""
    import numpy as np

    from inference.backends import TorchRenderer
    from inference.onnx_backend import OnnxRenderer
    from modules.harmonic_source import fixed_source_noise

    if kind == "visinger":
        model = models[0]
        n_phones = model.config.n_phones
    else:
        from inference.pair import AcousticVocoderPair

        model = AcousticVocoderPair(models[0], models[1])
        n_phones = models[0].config.n_phones
    score = {key: value.numpy() for key, value in _example_score(n_phones).items()}
    score["phone_frames"] = score["phone_frames"] * 3  # another length than the trace's
    n_frames = int(score["phone_frames"].sum())
    renderers = [TorchRenderer(model, sample_rate, hop_size), OnnxRenderer(out_dir)]
    prior = torch.randn(1, renderers[0].prior_noise_channels, n_frames, generator=torch.Generator().manual_seed(3)).numpy()
    noise = fixed_source_noise((1, 1, n_frames * hop_size)).numpy()[0, 0]
    wavs = []
    for renderer in renderers:
        acoustic = renderer.acoustic(score, None, prior if renderer.prior_noise_channels else None, 0.667, 0)
        wavs.append(renderer.decode(acoustic.latent, acoustic.f0, noise, 0.0, 0))
    return float(np.max(np.abs(wavs[0] - wavs[1])))


# ---- loading and the pack --------------------------------------------------------------------------------


def export_pack(source_path: Path, vocoder_path: Path | None, out: Path, opset: int = DEFAULT_OPSET) -> tuple[Path, str, float]:
    """Export the singer at `source_path` (with `vocoder_path` for an acoustic model) as the pack folder `out`,
    written atomically (model_io's pack files, the graphs, the manifest); returns (out, kind, the parity check's
    max |wav difference|). A parity check over `PARITY_TOLERANCE` fails the export and leaves nothing behind."""
    from inference.api import Singer
    from inference.pair import AcousticVocoderPair
    from model_io.pack import is_pack_folder, write_pack_files
    from preprocessor.atomic_io import write_folder_atomically

    if opset < MIN_OPSET:
        raise UserInputError(f"--opset {opset}: the graphs need opset {MIN_OPSET} or later; pass --opset {MIN_OPSET}")
    try:
        import onnx  # noqa: F401
        import onnxruntime  # noqa: F401
    except ImportError as error:
        raise UserInputError(f"export needs {error.name}: pip install onnx==1.23.2 onnxruntime==1.31.1 (the pins of requirements.txt)") from None
    # The one loader decides what the file holds (VISinger alone, or an acoustic model that needs a vocoder).
    singer = Singer.load(source_path, vocoder=vocoder_path, device="cpu")
    if isinstance(singer.model, AcousticVocoderPair):
        kind, models = "fs2_hifigan", (singer.model.acoustic, singer.model.vocoder)
    else:
        kind, models = "visinger", (singer.model,)
    audio = singer.audio
    source = " + ".join(record.source for record in singer.saved.trained) or str(singer.source)
    results: dict[str, Any] = {}

    def write(partial: Path) -> None:
        write_pack_files(singer.saved, partial, Path(out).name)  # model.pt + README.md: the torch backend reads the same folder
        export_graphs(kind, models, audio.sample_rate, audio.hop_size, partial, opset, source)
        results["difference"] = check_parity(partial, kind, models, audio.sample_rate, audio.hop_size)
        if results["difference"] > PARITY_TOLERANCE:
            raise RuntimeError(f"onnxruntime and torch differ by {results['difference']:.2e} (> {PARITY_TOLERANCE:g}) on the test phrase")

    written = write_folder_atomically(Path(out), write, is_pack_folder)
    return written, kind, results["difference"]


def main() -> int:
    args = build_parser().parse_args()
    from inference.synthesis import limit_onednn_primitive_cache

    limit_onednn_primitive_cache()
    from model_io.checkpoint_file import work_dir_for

    source_path = args.ckpt if args.ckpt is not None else work_dir_for(args.exp_name, args.work_dir_root)
    vocoder_path = work_dir_for(args.vocoder_exp, args.work_dir_root) if args.vocoder_exp else args.vocoder_ckpt
    out, kind, difference = export_pack(source_path, vocoder_path, args.out, args.opset)
    print(f"exported {source_path} ({kind}) -> {out}: model.pt, README.md, acoustic.onnx, decoder.onnx, onnx_manifest.json (opset {args.opset})")
    print(f"checked: onnxruntime vs torch on a test phrase, max |wav difference| {difference:.2e}")
    return 0


if __name__ == "__main__":
    run_cli(main)
