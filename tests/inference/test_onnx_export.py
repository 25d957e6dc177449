"""ONNX export (inference/export_onnx.py), the onnxruntime backend and streaming synthesis.

The demo VISinger (config/models/visinger_demo.yaml: source-excited HiFi-GAN, random weights) is
exported through the CLI once; onnxruntime must then sing a score of several phrases within 1e-3 of
torch with the same noise. Streaming is checked against the whole render with the tiny model of
conftest.py, everywhere and at the chunk boundaries, and shown to fail there without its context.
The two-stage pair (tiny FS2 singer + tiny source-excited HiFi-GAN, random weights) is exported and
checked the same way.
"""
from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from config.errors import UserInputError  # noqa: E402
from config.loader import load_config  # noqa: E402
from inference.backends import MIN_CHUNK_FRAMES, TorchRenderer  # noqa: E402
from inference.api import Singer  # noqa: E402
from inference.onnx_backend import MANIFEST_FILE, OnnxRenderer, load_onnx_singer  # noqa: E402
from model_io.pack import is_pack_folder  # noqa: E402
from inference.synthesis import STREAM_TOLERANCE, SingingSynthesizer  # noqa: E402
from modules.hifigan import HiFiGANGenerator  # noqa: E402
from preprocessor.score import REST, Note  # noqa: E402
from preprocessor.text.phone_set import PHONE_SET  # noqa: E402
from tests.inference.conftest import F0_STATS, REPO_ROOT, cli_env, read_pcm, run_cli, write_runner_checkpoint  # noqa: E402

EXPORT_CLI = "inference/export_onnx.py"
PARITY = 1e-3  # the bound: max |wav| difference, onnxruntime vs torch
# The pair's FS2 F0 differs between the runtimes by ~5e-7 relative (float32 rounding in its transformer);
# the harmonic source integrates it into phase, k * f0 * t * 5e-7 cycles at harmonic k, which over a
# 1.2 s phrase reaches ~1e-3 at the top harmonics of random amplitudes (measured 1.2e-3).
PAIR_PARITY = 2e-3


def run_export(*args: object) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, EXPORT_CLI, *map(str, args)], cwd=REPO_ROOT, env=cli_env(), capture_output=True, text=True, timeout=300
    )


def three_phrases() -> list[Note]:
    """~4 s: three sung phrases separated by 0.5 s rests (each rest is a phrase cut)."""
    notes, time_s = [], 0.0
    for phrase, pitch in (("산책길에", 62), ("노을빛이", 65), ("물들고", 67)):
        for syllable in phrase:
            notes.append(Note(time_s, time_s + 0.3, pitch, syllable))
            time_s += 0.3
        notes.append(Note(time_s, time_s + 0.5, 0, REST))
        time_s += 0.5
    return notes


@pytest.fixture(scope="module")
def demo_pack(tmp_path_factory) -> tuple[Path, object]:
    """The demo VISinger (random weights) as a runner checkpoint, exported by the CLI: (pack, process)."""
    base = tmp_path_factory.mktemp("demo_onnx")
    binary_dir = base / "binary"
    binary_dir.mkdir()
    (binary_dir / "f0_stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    from modules.visinger import VISingerGenerator
    from tasks.visinger_task import generator_config_from

    config = load_config(REPO_ROOT / "config" / "models" / "visinger_demo.yaml", f"dataset.binary_dir={binary_dir}")
    torch.manual_seed(0)
    generator = VISingerGenerator.from_config(generator_config_from(config)).eval()
    assert generator.config.harmonic_source, "the demo decoder is source-excited: its float64 phase must survive export"
    checkpoint = write_runner_checkpoint(base / "checkpoints" / "demo" / "model_ckpt_steps_1.pt", config, {"generator": generator.state_dict()})
    pack = base / "demo_onnx"
    process = run_export("--ckpt", checkpoint, "--out", pack)
    return pack, process


@pytest.fixture(scope="module")
def tiny_onnx_pack(tiny_experiment, tmp_path_factory) -> Path:
    pack = tmp_path_factory.mktemp("tiny_onnx") / "pack"
    process = run_export("--work_dir_root", tiny_experiment.work_dir_root, "--exp_name", tiny_experiment.exp_name, "--out", pack)
    assert process.returncode == 0, process.stderr
    return pack


def test_export_writes_a_pack_with_graphs_and_a_self_describing_manifest(demo_pack):
    pack, process = demo_pack
    assert process.returncode == 0, process.stderr
    assert "max |wav difference|" in process.stdout
    manifest = json.loads((pack / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["opset"] >= 17 and manifest["model"] == "visinger"
    assert (manifest["sample_rate"], manifest["hop_size"]) == (16000, 160)
    assert manifest["phone_set"] == list(PHONE_SET) and manifest["harmonic_source"] is True
    for role, names in (("acoustic", ["phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "prior_noise", "noise_scale"]),
                        ("decoder", ["latent", "f0", "source_noise", "start_phase"])):  # fmt: skip
        graph = manifest["graphs"][role]
        model = onnx.load(str(pack / graph["file"]))
        assert model.opset_import[0].version >= 17
        # The manifest's inputs are the graph's, in order, with its dtypes and dynamic axes.
        assert [spec["name"] for spec in graph["inputs"]] == names == [i.name for i in model.graph.input]
        for spec, value in zip(graph["inputs"], model.graph.input):
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            assert dims == spec["shape"], spec["name"]
            assert onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type) == np.dtype(spec["dtype"])
    assert manifest["graphs"]["decoder"]["inputs"][3]["dtype"] == "float64"  # the harmonic phase stays float64
    # The usual pack files are there too: the torch backend sings from the same folder.
    assert Singer.load(pack, device="cpu").model.config.harmonic_source
    assert (pack / "model.pt").is_file() and (pack / "README.md").is_file() and is_pack_folder(pack)  # model_io's pack, re-exportable in place


def test_onnxruntime_sings_a_multi_phrase_score_as_torch_does(demo_pack, frontend):
    pack, _ = demo_pack
    torch_singer, onnx_singer = Singer.load(pack, device="cpu"), Singer.load(pack, device="cpu", backend="onnx")
    assert (torch_singer.backend, onnx_singer.backend) == ("torch", "onnx")
    rate, hop = torch_singer.audio.sample_rate, torch_singer.audio.hop_size
    notes = three_phrases()
    results = [
        SingingSynthesizer(singer.model, rate, hop, frontend=frontend).synthesize(notes, seed=5)
        for singer in (torch_singer, onnx_singer)
    ]
    assert results[0].phrases == results[1].phrases == 3
    assert np.abs(results[0].wav).max() > 1e-4  # a signal to compare, not two silences
    assert len(results[0].wav) == len(results[1].wav)
    assert np.abs(results[0].wav - results[1].wav).max() <= PARITY
    np.testing.assert_allclose(results[0].f0_hz, results[1].f0_hz, rtol=1e-4, atol=1e-3)
    # The noise is an input: another seed changes the ONNX render as it changes torch's.
    other = SingingSynthesizer(onnx_singer.model, rate, hop, frontend=frontend).synthesize(notes, seed=6)
    assert np.abs(other.wav - results[1].wav).max() > 10 * PARITY


@pytest.mark.parametrize("n_phones", [1, 2, 3, 17])
def test_the_graphs_take_lengths_other_than_the_traced_one(tiny_onnx_pack, n_phones):
    """Phrases shorter than the attention window and longer than the trace: no length was baked in."""
    torch_renderer = TorchRenderer(Singer.load(tiny_onnx_pack, device="cpu").model, 16000, 160)
    onnx_renderer = OnnxRenderer(tiny_onnx_pack)
    rng = np.random.default_rng(n_phones)
    frames = rng.integers(1, 6, (1, n_phones))
    score = {
        "phone_ids": rng.integers(1, len(PHONE_SET), (1, n_phones)), "note_pitch": rng.integers(55, 75, (1, n_phones)),
        "note_dur": (frames * 2).astype(np.float32), "slur": np.zeros((1, n_phones), dtype=np.int64), "phone_frames": frames,
    }  # fmt: skip
    prior = rng.standard_normal((1, torch_renderer.prior_noise_channels, int(frames.sum()))).astype(np.float32)
    noise = rng.standard_normal(int(frames.sum()) * 160).astype(np.float32)
    outs = []
    for renderer in (torch_renderer, onnx_renderer):
        acoustic = renderer.acoustic(score, prior, 0.667, 0)
        outs.append((acoustic, renderer.decode(acoustic.latent, acoustic.f0, noise, 0.3, 0)))
    np.testing.assert_allclose(outs[0][0].latent, outs[1][0].latent, atol=1e-4)
    assert np.abs(outs[0][1] - outs[1][1]).max() <= PARITY


def _boundary_errors(whole: np.ndarray, chunks: list, hop: int) -> np.ndarray:
    """Max |difference| within 2 frames of every chunk boundary."""
    errors = []
    for chunk in chunks[1:]:
        lo, hi = max(0, chunk.start - 2 * hop), min(len(whole), chunk.start + 2 * hop)
        joined = np.concatenate([c.wav for c in chunks])
        errors.append(np.abs(joined[lo:hi] - whole[lo:hi]).max())
    return np.array(errors)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_streamed_chunks_join_into_the_whole_render(tiny_experiment, tiny_onnx_pack, frontend, backend):
    generator = tiny_experiment.generator if backend == "torch" else OnnxRenderer(tiny_onnx_pack)
    synthesizer = SingingSynthesizer(generator, 16000, 160, frontend=frontend)
    notes = three_phrases()
    whole = synthesizer.synthesize(notes, seed=1).wav
    chunks = list(synthesizer.stream(notes, seed=1, chunk_frames=MIN_CHUNK_FRAMES))
    starts = [c.start for c in chunks]
    assert starts == sorted(starts) and all(a.start + len(a.wav) == b.start for a, b in zip(chunks, chunks[1:]))
    joined = np.concatenate([c.wav for c in chunks])
    assert len(joined) == len(whole)
    assert len({c.phrase for c in chunks}) == 3 and len(chunks) > 20  # many boundaries, inside phrases and at cross-fades
    assert np.abs(joined - whole).max() <= STREAM_TOLERANCE
    assert _boundary_errors(whole, chunks, 160).max() <= STREAM_TOLERANCE


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_a_long_phrase_renders_in_bounded_pieces_on_either_backend_and_streams_the_same(tiny_experiment, tiny_onnx_pack, frontend, backend):
    """Issue 13's piece cutting sits on the renderer interface: a 6 s note with 1.5 s pieces goes
    through torch or onnxruntime piece by piece (no window longer than a piece plus its overlap),
    and streaming it joins into the whole render."""
    renderer = TorchRenderer(tiny_experiment.generator, 16000, 160) if backend == "torch" else OnnxRenderer(tiny_onnx_pack)
    windows: list[int] = []
    acoustic = renderer.acoustic

    def counting_acoustic(score, *args):
        windows.append(int(score["phone_frames"].sum()))
        return acoustic(score, *args)

    renderer.acoustic = counting_acoustic
    synthesizer = SingingSynthesizer(renderer, 16000, 160, frontend=frontend, max_piece_seconds=1.5, piece_overlap_seconds=0.4)
    notes = [Note(0.0, 0.5, 0, REST), Note(0.5, 6.5, 64, "아"), Note(6.5, 7.0, 0, REST)]
    whole = synthesizer.synthesize(notes, seed=1)
    assert len(windows) >= 5 and max(windows) <= synthesizer.max_piece_frames + 2 * synthesizer.piece_overlap_frames
    assert len(whole.wav) == 700 * 160 and np.isfinite(whole.wav).all() and whole.phrases == 1
    chunks = list(synthesizer.stream(notes, seed=1, chunk_frames=32))
    assert all(a.start + len(a.wav) == b.start for a, b in zip(chunks, chunks[1:])) and len(chunks) > 5
    joined = np.concatenate([c.wav for c in chunks])
    assert len(joined) == len(whole.wav) and np.abs(joined - whole.wav).max() <= STREAM_TOLERANCE
    if backend == "onnx":  # and onnxruntime's pieces sing what torch's do
        torch_whole = SingingSynthesizer(
            tiny_experiment.generator, 16000, 160, frontend=frontend, max_piece_seconds=1.5, piece_overlap_seconds=0.4
        ).synthesize(notes, seed=1)
        assert np.abs(torch_whole.wav - whole.wav).max() <= PARITY


def test_singer_stream_joins_into_singer_sing(tiny_onnx_pack, frontend):
    """The API's stream (`Singer.stream`, onnxruntime here) yields in-order chunks that join into `Singer.sing`'s wav."""
    singer = Singer.load(tiny_onnx_pack, device="cpu", backend="onnx", frontend=frontend)
    midi = REPO_ROOT / "data" / "examples" / "sanchaek.mid"
    whole = singer.sing(midi, seed=3).wav
    chunks = list(singer.stream(midi, seed=3, chunk_frames=MIN_CHUNK_FRAMES))
    assert len(chunks) > 1 and all(a.start + len(a.wav) == b.start for a, b in zip(chunks, chunks[1:]))
    joined = np.concatenate([c.wav for c in chunks])
    assert len(joined) == len(whole) and np.abs(joined - whole).max() <= STREAM_TOLERANCE
    with pytest.raises(UserInputError, match="packing writes torch weights"):
        singer.pack(tiny_onnx_pack.parent / "repacked")


def test_without_the_decoder_context_the_chunk_boundaries_would_click(tiny_experiment, frontend):
    """The negative control of the test above: the context is what makes chunks match."""
    synthesizer = SingingSynthesizer(tiny_experiment.generator, 16000, 160, frontend=frontend)
    notes = three_phrases()
    whole = synthesizer.synthesize(notes, seed=1).wav
    synthesizer.renderer.context_frames = 0
    chunks = list(synthesizer.stream(notes, seed=1, chunk_frames=MIN_CHUNK_FRAMES))
    assert _boundary_errors(whole, chunks, 160).max() > 10 * STREAM_TOLERANCE


def test_decoder_context_bounds_its_receptive_field():
    """A latent frame changed at t changes no sample beyond `context_frames` frames on either side."""
    torch.manual_seed(0)
    decoder = HiFiGANGenerator(8, 12, 16, (3, 2, 2), (6, 4, 4), "1", (3, 5), ((1, 3), (1, 3)), 0, True, 2400, 4).eval()
    context, frames, t = decoder.context_frames(), 60, 30
    z = torch.randn(1, 8, frames)
    f0 = torch.full((1, frames), 150.0)
    noise = torch.randn(1, 1, frames * 12)
    with torch.no_grad():
        base = decoder.decode(z, None, None, f0, noise).wav[0, 0]
        z[:, :, t] += 5.0
        moved = decoder.decode(z, None, None, f0, noise).wav[0, 0]
    changed = torch.nonzero((moved - base).abs() > 0).flatten()
    assert len(changed) > 0
    assert changed.min() >= (t - context) * 12 and changed.max() < (t + 1 + context) * 12


def test_a_one_frame_chunk_is_refused_clearly(tiny_experiment, tiny_onnx_pack, frontend, tmp_path):
    synthesizer = SingingSynthesizer(tiny_experiment.generator, 16000, 160, frontend=frontend)
    with pytest.raises(UserInputError, match=f"--chunk_frames 1: a streamed chunk must hold at least {MIN_CHUNK_FRAMES} frames"):
        synthesizer.stream(three_phrases(), chunk_frames=1)
    process = run_cli("--ckpt", tiny_onnx_pack, "--midi", REPO_ROOT / "data" / "examples" / "sanchaek.mid", "--out", tmp_path / "a.wav", "--stream", "--chunk_frames", "1")
    assert process.returncode == 2 and len(process.stderr.strip().splitlines()) == 1
    assert "--chunk_frames 1" in process.stderr and not (tmp_path / "a.wav").exists()


def test_cli_sings_from_the_onnx_pack_and_streams_the_same_wav(tiny_onnx_pack, tmp_path):
    midi = REPO_ROOT / "data" / "examples" / "sanchaek.mid"
    torch_wav, onnx_wav, stream_wav = tmp_path / "torch.wav", tmp_path / "onnx.wav", tmp_path / "stream.wav"
    for wav, flags in ((torch_wav, ()), (onnx_wav, ("--backend", "onnx")), (stream_wav, ("--backend", "onnx", "--stream"))):
        process = run_cli("--ckpt", tiny_onnx_pack, "--midi", midi, "--out", wav, *flags)
        assert process.returncode == 0, process.stderr
    assert "first audio after" in process.stdout and "onnx" in process.stdout
    reference = read_pcm(torch_wav)[0].astype(int)
    for wav in (onnx_wav, stream_wav):
        samples = read_pcm(wav)[0].astype(int)
        assert len(samples) == len(reference) and np.abs(samples - reference).max() <= 1  # one 16-bit step at most


def test_onnx_backend_on_a_pack_without_onnx_files_says_how_to_export(tiny_experiment, tmp_path):
    pack = Singer.load(tiny_experiment.exp_dir, device="cpu").pack(tmp_path / "pack")
    process = run_cli("--ckpt", pack, "--backend", "onnx", "--midi", REPO_ROOT / "data" / "examples" / "sanchaek.mid", "--out", tmp_path / "a.wav")
    assert process.returncode == 2
    lines = process.stderr.strip().splitlines()
    assert len(lines) == 1 and "no ONNX files" in lines[0] and f"inference/export_onnx.py --ckpt {pack}" in lines[0]
    with pytest.raises(UserInputError, match="not a checkpoint file"):
        load_onnx_singer(tiny_experiment.checkpoint)


def _with_phone_set(path: Path, phones: list[str]) -> None:
    model = onnx.load(str(path))
    for entry in model.metadata_props:
        if entry.key == "phone_set":
            entry.value = json.dumps(phones, ensure_ascii=False)
    onnx.save(model, str(path))


def test_an_onnx_file_from_another_phone_set_is_refused(tiny_onnx_pack, tmp_path):
    pack = tmp_path / "pack"
    shutil.copytree(tiny_onnx_pack, pack)
    other = list(PHONE_SET)
    other[5], other[6] = other[6], other[5]  # same size, two ids swapped: it would sing the wrong phonemes
    _with_phone_set(pack / "decoder.onnx", other)
    with pytest.raises(UserInputError, match=r"decoder\.onnx: exported with another phone set .* first differ at id 5"):
        OnnxRenderer(pack)
    manifest = json.loads((pack / MANIFEST_FILE).read_text(encoding="utf-8"))
    manifest["phone_set"] = list(PHONE_SET)[:-1]
    (pack / MANIFEST_FILE).write_text(json.dumps(manifest), encoding="utf-8")
    with pytest.raises(UserInputError, match=f"onnx_manifest.json: exported with another phone set \\({len(PHONE_SET) - 1} phones"):
        OnnxRenderer(pack)


def test_the_two_stage_pair_exports_and_matches_torch(tmp_path, frontend):
    """Tiny FS2 singer + tiny source-excited HiFi-GAN (random weights) as runner checkpoints -> one ONNX pair pack."""
    FS2_TASK, HIFIGAN_TASK = "tasks.fs2_task.FS2SingerTask", "tasks.hifigan_task.HiFiGANTask"
    from modules.fs2_singer import FS2Singer
    from tasks.fs2_task import acoustic_config_from
    from tasks.hifigan_task import vocoder_config_from
    from tests.tasks.test_baselines import FS2_YAML, HIFIGAN_YAML, tiny_config

    (tmp_path / "binary").mkdir()
    fs2_config, vocoder_config = (tiny_config(yaml, tmp_path / "binary") for yaml in (FS2_YAML, HIFIGAN_YAML))
    torch.manual_seed(0)
    fs2 = FS2Singer.from_config(acoustic_config_from(fs2_config))
    vocoder = HiFiGANGenerator(**vars(vocoder_config_from(vocoder_config)))
    assert vocoder.source is not None
    fs2_ckpt = write_runner_checkpoint(tmp_path / "fs2" / "model_ckpt_steps_1.pt", fs2_config, {"acoustic": fs2.state_dict()}, FS2_TASK)
    voc_ckpt = write_runner_checkpoint(tmp_path / "voc" / "model_ckpt_steps_1.pt", vocoder_config, {"generator": vocoder.state_dict()}, HIFIGAN_TASK)
    process = run_export("--ckpt", fs2_ckpt, "--vocoder_ckpt", voc_ckpt, "--out", tmp_path / "pair")
    assert process.returncode == 0, process.stderr
    manifest = json.loads((tmp_path / "pair" / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["model"] == "fs2_hifigan" and manifest["prior_noise_channels"] == 0
    torch_singer = Singer.load(tmp_path / "pair", device="cpu")  # the pair pack holds both models
    onnx_singer = Singer.load(tmp_path / "pair", device="cpu", backend="onnx")
    notes = three_phrases()
    wavs = [SingingSynthesizer(s.model, 16000, 160, frontend=frontend).synthesize(notes).wav for s in (torch_singer, onnx_singer)]
    assert np.abs(wavs[0]).max() > 1e-4 and np.abs(wavs[0] - wavs[1]).max() <= PAIR_PARITY
    # Given the same mel and F0, the vocoder graph is exact; the rest is the F0's rounding, integrated into phase.
    torch_renderer, onnx_renderer = TorchRenderer(torch_singer.model, 16000, 160), onnx_singer.model
    mel = np.random.default_rng(0).standard_normal((vocoder.conv_pre.in_channels, 150)).astype(np.float32)
    f0 = np.full(150, 261.6, dtype=np.float32)
    noise = np.random.default_rng(1).standard_normal(150 * 160).astype(np.float32)
    same = [r.decode(mel, f0, noise, 0.4, 0) for r in (torch_renderer, onnx_renderer)]
    assert np.abs(same[0] - same[1]).max() <= 1e-5


def test_the_exported_harmonic_phase_is_summed_in_float64(tiny_onnx_pack):
    """30 s at 440 Hz is 13200 cycles: a float32 running sum would be off by ~1e-3 cycle there, the graph is not."""
    torch_renderer = TorchRenderer(Singer.load(tiny_onnx_pack, device="cpu").model, 16000, 160)
    onnx_renderer = OnnxRenderer(tiny_onnx_pack)
    frames = 3000
    latent = np.random.default_rng(0).standard_normal((torch_renderer.prior_noise_channels, frames)).astype(np.float32)
    f0 = np.full(frames, 440.0, dtype=np.float32)
    noise = np.zeros(frames * 160, dtype=np.float32)
    wavs = [r.decode(latent, f0, noise, 0.123456789, 0) for r in (torch_renderer, onnx_renderer)]
    assert np.abs(wavs[0][-16000:] - wavs[1][-16000:]).max() <= 1e-5
    graph = onnx.load(str(tiny_onnx_pack / "decoder.onnx")).graph
    assert any(node.op_type == "CumSum" for node in graph.node)
