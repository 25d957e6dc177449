"""ONNX export (inference/export_onnx.py), the onnxruntime backend and streaming synthesis.

The demo VISinger (config/models/visinger_demo.yaml: source-excited HiFi-GAN, random weights) is
exported through the CLI once; onnxruntime must then sing a score of several phrases within 1e-3 of
torch with the same noise. Each other decoder (hifigan, ddsp with a room, istft) is exported from a
tiny generator (tests/modules/factories.py) and compared the same way, whole and in chunks. Streaming
is checked against the whole render with the tiny experiment of conftest.py, everywhere and at the
chunk boundaries, on both backends. The two-stage pair (tiny FS2 singer + tiny source-excited
HiFi-GAN, random weights) is exported and checked too.
"""
from __future__ import annotations

import json
import shutil
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

pytest.importorskip("onnxruntime")
onnx = pytest.importorskip("onnx")

from config.errors import UserInputError  # noqa: E402
from config.errors import run_cli as run_main  # noqa: E402
from config.loader import load_config  # noqa: E402
from inference.api import Singer  # noqa: E402
from inference.backends import MIN_CHUNK_FRAMES, TorchRenderer, decode_chunks  # noqa: E402
from inference.export_onnx import export_graphs, export_pack  # noqa: E402
from inference.onnx_backend import MANIFEST_FILE, OnnxRenderer  # noqa: E402
from inference.synthesis import STREAM_TOLERANCE, SingingSynthesizer  # noqa: E402
from model_io.pack import is_pack_folder  # noqa: E402
from modules.ddsp.chain import harmonic_plus_noise_chain  # noqa: E402
from modules.harmonic_source import fixed_source_noise  # noqa: E402
from modules.hifigan import HiFiGANGenerator  # noqa: E402
from preprocessor.score import REST, Note  # noqa: E402
from preprocessor.text.phone_set import PHONE_SET  # noqa: E402
from tests.inference.conftest import F0_STATS, REPO_ROOT, SANCHAEK, read_pcm, write_runner_checkpoint  # noqa: E402
from tests.modules.factories import make_tiny_generator  # noqa: E402

PARITY = 1e-3  # the bound: max |wav| difference, onnxruntime vs torch
# The pair's FS2 F0 differs between the runtimes by ~5e-7 relative (float32 rounding in its transformer);
# the harmonic source integrates it into phase, k * f0 * t * 5e-7 cycles at harmonic k, which over a
# 1.2 s phrase reaches ~1e-3 at the top harmonics of random amplitudes (measured 1.2e-3 on i15).
PAIR_PARITY = 2e-3


def in_process_cli(main, script: str, args: tuple, monkeypatch, capsys) -> tuple[int, str, str]:
    """A CLI's `main` run in this process as `python script ARGS` would (`run_cli`: exit 2 and one line on a
    bad input): (exit code, stdout, stderr). No subprocess: a cold interpreter and torch import cost ~10 s here."""
    monkeypatch.setattr(sys, "argv", [script, *map(str, args)])
    capsys.readouterr()
    with pytest.raises(SystemExit) as exit_info:
        run_main(main)
    captured = capsys.readouterr()
    return int(exit_info.value.code or 0), captured.out, captured.err


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
def demo_pack(tmp_path_factory) -> tuple[Path, tuple[int, str, str]]:
    """The demo VISinger (random weights) as a runner checkpoint, exported by the CLI's main: (pack, (code, out, err))."""
    base = tmp_path_factory.mktemp("demo_onnx")
    binary_dir = base / "binary"
    binary_dir.mkdir()
    (binary_dir / "f0_stats.json").write_text(json.dumps(F0_STATS), encoding="utf-8")
    from modules.visinger import VISingerGenerator
    from tasks.visinger_task import generator_config_from

    config = load_config(REPO_ROOT / "config" / "models" / "visinger_demo.yaml", f"dataset.binary_dir={binary_dir}")
    torch.manual_seed(0)
    generator = VISingerGenerator.from_config(generator_config_from(config)).eval()
    assert generator.decoder.uses_f0, "the demo decoder is source-excited: its float64 phase must survive export"
    checkpoint = write_runner_checkpoint(base / "checkpoints" / "demo" / "model_ckpt_steps_1.pt", config, {"generator": generator.state_dict()})
    pack = base / "demo_onnx"
    from inference.export_onnx import main

    with pytest.MonkeyPatch.context() as monkeypatch:
        monkeypatch.setattr(sys, "argv", ["export_onnx.py", "--ckpt", str(checkpoint), "--out", str(pack)])
        with pytest.raises(SystemExit) as exit_info:
            run_main(main)
    return pack, exit_info.value.code


@pytest.fixture(scope="module")
def tiny_onnx_pack(tiny_experiment, tmp_path_factory) -> Path:
    """conftest's tiny experiment exported in-process (`export_pack`, what the CLI runs)."""
    pack, kind, difference = export_pack(tiny_experiment.exp_dir, None, tmp_path_factory.mktemp("tiny_onnx") / "pack")
    assert kind == "visinger" and difference <= PARITY
    return pack


def test_export_writes_a_pack_with_graphs_and_a_self_describing_manifest(demo_pack):
    pack, code = demo_pack
    assert code in (0, None)
    manifest = json.loads((pack / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert manifest["opset"] >= 17 and manifest["model"] == "visinger" and manifest["decoder"] == "nsf_hifigan"
    assert (manifest["sample_rate"], manifest["hop_size"]) == (16000, 160)
    assert manifest["phone_set"] == list(PHONE_SET) and manifest["decoder_uses_f0"] is True and manifest["decoder_uses_noise"] is True
    for role, names in (("acoustic", ["phone_ids", "note_pitch", "note_dur", "slur", "phone_frames", "given_f0", "prior_noise", "noise_scale"]),
                        ("decoder", ["latent", "f0", "start_phase", "source_noise"])):  # fmt: skip
        graph = manifest["graphs"][role]
        model = onnx.load(str(pack / graph["file"]))
        assert model.opset_import[0].version >= 17
        # The manifest's inputs are the graph's, in order, with its dtypes and dynamic axes.
        assert [spec["name"] for spec in graph["inputs"]] == names == [i.name for i in model.graph.input]
        for spec, value in zip(graph["inputs"], model.graph.input):
            dims = [d.dim_param or d.dim_value for d in value.type.tensor_type.shape.dim]
            assert dims == spec["shape"], spec["name"]
            assert onnx.helper.tensor_dtype_to_np_dtype(value.type.tensor_type.elem_type) == np.dtype(spec["dtype"])
    assert manifest["graphs"]["decoder"]["inputs"][2]["dtype"] == "float64"  # the harmonic phase stays float64
    # The usual pack files are there too: the torch backend sings from the same folder.
    assert Singer.load(pack, device="cpu").model.decoder.uses_f0
    assert (pack / "model.pt").is_file() and (pack / "README.md").is_file() and is_pack_folder(pack)


def test_onnxruntime_sings_a_multi_phrase_score_as_torch_does(demo_pack, frontend):
    pack, _ = demo_pack
    torch_singer, onnx_singer = Singer.load(pack, device="cpu"), Singer.load(pack, device="cpu", backend="onnx")
    assert (torch_singer.backend, onnx_singer.backend) == ("torch", "onnx")
    rate, hop = torch_singer.audio.sample_rate, torch_singer.audio.hop_size
    synthesizers = [SingingSynthesizer(singer.model, rate, hop, frontend=frontend) for singer in (torch_singer, onnx_singer)]
    results = [synthesizer.synthesize(three_phrases(), seed=5) for synthesizer in synthesizers]
    assert results[0].phrases == results[1].phrases == 3
    assert np.abs(results[0].wav).max() > 1e-4  # a signal to compare, not two silences
    assert len(results[0].wav) == len(results[1].wav)
    assert np.abs(results[0].wav - results[1].wav).max() <= PARITY
    np.testing.assert_allclose(results[0].f0_hz, results[1].f0_hz, rtol=1e-4, atol=1e-3)


TINY_DECODERS = {
    "hifigan": dict(decoder="hifigan"),
    "ddsp_reverb": dict(decoder="ddsp", ddsp_chain=tuple(harmonic_plus_noise_chain(n_harmonics=4, n_bands=9, reverb_ir_length=40))),
    "istft": dict(decoder="istft"),
}


@pytest.mark.parametrize("name", list(TINY_DECODERS))
def test_every_decoder_exports_and_onnxruntime_matches_torch_whole_and_in_chunks(name, tmp_path):
    """Tiny generators (2.4 kHz, hop 12) with each other decoder: graphs exported, then run on phrases
    shorter and longer than the trace's; the same graphs in chunks join into the whole render."""
    generator = make_tiny_generator(**TINY_DECODERS[name]).eval()
    manifest = export_graphs("visinger", (generator,), 2400, 12, tmp_path, 17, name)
    assert manifest["decoder"] == generator.config.decoder
    renderers = TorchRenderer(generator, 2400, 12), OnnxRenderer(tmp_path)
    assert renderers[1].context_frames == renderers[0].context_frames == generator.decoder.context_frames()
    rng = np.random.default_rng(0)
    for n_phones in (2, 23):
        frames = rng.integers(1, 9, (1, n_phones))
        n_frames = int(frames.sum())
        score = {
            "phone_ids": rng.integers(1, 12, (1, n_phones)), "note_pitch": rng.integers(55, 75, (1, n_phones)),
            "note_dur": (frames * 2).astype(np.float32), "slur": np.zeros((1, n_phones), dtype=np.int64), "phone_frames": frames,
        }  # fmt: skip
        prior = rng.standard_normal((1, 8, n_frames)).astype(np.float32)
        given = np.where(np.arange(n_frames) % 3 == 0, np.nan, 200.0).astype(np.float32)  # a given F0, NaN = predicted
        noise = fixed_source_noise((1, 1, n_frames * 12)).numpy()[0, 0]
        outs = []
        for renderer in renderers:
            acoustic = renderer.acoustic(score, given, prior, 0.667, 0)
            whole = renderer.decode(acoustic.latent, acoustic.f0, noise, 0.0, 0)
            chunked = np.concatenate([c.wav for c in decode_chunks(renderer, acoustic.latent, acoustic.f0, noise, 0, MIN_CHUNK_FRAMES)])
            outs.append((acoustic, whole, chunked))
        (torch_acoustic, torch_whole, torch_chunked), (onnx_acoustic, onnx_whole, onnx_chunked) = outs
        np.testing.assert_allclose(onnx_acoustic.f0, torch_acoustic.f0, rtol=1e-5, atol=1e-4)
        assert np.all(torch_acoustic.f0[1::3] == 200.0)  # the given frames are sung as given
        assert np.abs(torch_whole).max() > 1e-5 and len(onnx_whole) == n_frames * 12
        assert np.abs(onnx_whole - torch_whole).max() <= PARITY
        assert np.abs(torch_chunked - torch_whole).max() <= STREAM_TOLERANCE
        assert np.abs(onnx_chunked - onnx_whole).max() <= STREAM_TOLERANCE


def _boundary_errors(whole: np.ndarray, chunks: list, hop: int) -> np.ndarray:
    """Max |difference| within 2 frames of every chunk boundary."""
    joined = np.concatenate([c.wav for c in chunks])
    errors = []
    for chunk in chunks[1:]:
        lo, hi = max(0, chunk.start - 2 * hop), min(len(whole), chunk.start + 2 * hop)
        errors.append(np.abs(joined[lo:hi] - whole[lo:hi]).max())
    return np.array(errors)


@pytest.mark.parametrize("backend", ["torch", "onnx"])
def test_streamed_chunks_join_into_the_whole_render(tiny_experiment, tiny_onnx_pack, frontend, backend):
    generator = tiny_experiment.generator if backend == "torch" else OnnxRenderer(tiny_onnx_pack)
    synthesizer = SingingSynthesizer(generator, 16000, 160, frontend=frontend)
    plan = synthesizer.plan(three_phrases())
    whole = synthesizer.render(plan, seed=1)
    song = synthesizer.stream(plan, seed=1, chunk_frames=MIN_CHUNK_FRAMES)
    chunks = list(song.chunks())
    assert all(a.start + len(a.wav) == b.start for a, b in zip(chunks, chunks[1:])) and chunks[0].start == 0
    joined = np.concatenate([c.wav for c in chunks])
    assert len(joined) == len(whole.wav)
    assert len({c.phrase for c in chunks}) == 3 and len(chunks) > 20  # many boundaries, inside phrases and at cross-fades
    assert np.abs(joined - whole.wav).max() <= STREAM_TOLERANCE
    assert _boundary_errors(whole.wav, chunks, 160).max() <= STREAM_TOLERANCE
    streamed = song.result(joined)
    np.testing.assert_allclose(streamed.f0_hz, whole.f0_hz, atol=1e-3)
    if backend == "torch":
        # A lazy plan (what `Singer.sing_stream` renders) is the same plan, but its first chunk comes after one phrase's front end.
        calls: list[int] = []
        real_phonemize = frontend.phonemize
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr(frontend, "phonemize", lambda notes, **kwargs: calls.append(len(notes)) or real_phonemize(notes, **kwargs))
            lazy = synthesizer.plan(three_phrases(), lazy=True)
            lazy_chunks = synthesizer.stream(lazy, seed=1, chunk_frames=MIN_CHUNK_FRAMES).chunks()
            assert np.array_equal(next(lazy_chunks).wav, chunks[0].wav) and len(calls) == 1  # the first phrase only
            assert np.array_equal(np.concatenate([chunks[0].wav] + [c.wav for c in lazy_chunks]), joined)
        assert tuple(lazy.phrases) == plan.phrases and len(calls) == 3
        # The negative control: without the decoder's context the boundaries would click.
        synthesizer.renderer.context_frames = 0
        unguarded = list(synthesizer.stream(plan, seed=1, chunk_frames=MIN_CHUNK_FRAMES).chunks())
        assert _boundary_errors(whole.wav, unguarded, 160).max() > 10 * STREAM_TOLERANCE


def test_a_long_phrase_renders_in_bounded_pieces_on_onnxruntime_and_streams_the_same(tiny_experiment, tiny_onnx_pack, frontend):
    """Issue 13's piece cutting sits on the renderer interface: a 4 s note with 1.5 s pieces goes
    through onnxruntime piece by piece (no window longer than a piece plus its overlap), sings what
    torch's pieces sing, and streaming it joins into the whole render."""
    renderer = OnnxRenderer(tiny_onnx_pack)
    windows: list[int] = []
    acoustic = renderer.acoustic

    def counting_acoustic(score, *args):
        windows.append(int(score["phone_frames"].sum()))
        return acoustic(score, *args)

    renderer.acoustic = counting_acoustic
    pieces = dict(max_piece_seconds=1.5, piece_overlap_seconds=0.4)
    synthesizer = SingingSynthesizer(renderer, 16000, 160, frontend=frontend, **pieces)
    notes = [Note(0.0, 0.3, 0, REST), Note(0.3, 4.3, 64, "아"), Note(4.3, 4.6, 0, REST)]
    whole = synthesizer.synthesize(notes, seed=1)
    assert len(windows) >= 3 and max(windows) <= synthesizer.max_piece_frames + 2 * synthesizer.piece_overlap_frames
    assert len(whole.wav) == 460 * 160 and whole.phrases == 1
    torch_whole = SingingSynthesizer(tiny_experiment.generator, 16000, 160, frontend=frontend, **pieces).synthesize(notes, seed=1)
    assert np.abs(torch_whole.wav - whole.wav).max() <= PARITY
    chunks = list(synthesizer.stream(synthesizer.plan(notes), seed=1, chunk_frames=32).chunks())
    joined = np.concatenate([c.wav for c in chunks])
    # Chunks inside the pieces too (the piece cross-fades wait for their own samples only), so the delay is one chunk's.
    assert len(chunks) > 2 * (len(windows) // 2) and len(joined) == len(whole.wav) and np.abs(joined - whole.wav).max() <= STREAM_TOLERANCE


def test_singer_stream_joins_into_singer_sing_and_a_one_frame_chunk_is_refused(tiny_onnx_pack, frontend):
    """The API's stream (`Singer.sing_stream`, onnxruntime here) yields in-order chunks that join into `Singer.sing`'s wav."""
    singer = Singer.load(tiny_onnx_pack, device="cpu", backend="onnx", frontend=frontend)
    whole = singer.sing(SANCHAEK, seed=3).wav
    chunks = list(singer.sing_stream(SANCHAEK, seed=3, chunk_frames=MIN_CHUNK_FRAMES))
    assert len(chunks) > 1 and all(a.start + len(a.wav) == b.start for a, b in zip(chunks, chunks[1:]))
    joined = np.concatenate([c.wav for c in chunks])
    assert len(joined) == len(whole) and np.abs(joined - whole).max() <= STREAM_TOLERANCE
    with pytest.raises(UserInputError, match=f"--chunk_frames 1: a streamed chunk must hold at least {MIN_CHUNK_FRAMES} frames"):
        singer.sing_stream(SANCHAEK, chunk_frames=1)
    with pytest.raises(UserInputError, match="packing writes torch weights"):
        singer.pack(tiny_onnx_pack.parent / "repacked")


def test_cli_sings_from_the_onnx_pack_with_streaming_as_torch_sings(tiny_onnx_pack, tmp_path, frontend, monkeypatch, capsys):
    from inference.visinger import main

    monkeypatch.setattr("inference.synthesis.KoreanFrontend", lambda *args, **kwargs: frontend)  # one g2pk load
    stream_wav = tmp_path / "stream.wav"
    code, out, err = in_process_cli(main, "visinger.py", ("--ckpt", tiny_onnx_pack, "--score", SANCHAEK, "--out", stream_wav,
                                                          "--backend", "onnx", "--stream", "--device", "cpu"), monkeypatch, capsys)  # fmt: skip
    assert code == 0, err
    assert "first audio after" in out and "onnx" in out
    reference = Singer.load(tiny_onnx_pack, device="cpu", frontend=frontend).sing(SANCHAEK).wav
    samples = read_pcm(stream_wav)[0].astype(int)
    expected = np.round(np.clip(reference, -1, 1) * 32767).astype(int)
    assert len(samples) == len(expected) and np.abs(samples - expected).max() <= 1  # one 16-bit step at most


def test_bad_onnx_inputs_are_one_line_with_exit_2(tiny_experiment, tiny_onnx_pack, tmp_path, monkeypatch, capsys):
    """A pack without ONNX files (says how to export), a pack with a graph of another phone set, a
    checkpoint file, a 1-frame chunk: one line each, exit 2, no wav."""
    from inference.visinger import main

    pack = Singer.load(tiny_experiment.exp_dir, device="cpu").pack(tmp_path / "pack")
    foreign = tmp_path / "foreign"
    shutil.copytree(tiny_onnx_pack, foreign)
    _with_phone_set(foreign / "acoustic.onnx", list(reversed(PHONE_SET)))
    cases = [
        ((pack, "--backend", "onnx"), ["no ONNX files", f"inference/export_onnx.py --ckpt {pack}"]),
        ((foreign, "--backend", "onnx"), ["acoustic.onnx: exported with another phone set"]),
        ((tiny_experiment.checkpoint, "--backend", "onnx"), ["not a checkpoint file"]),
        ((tiny_onnx_pack, "--stream", "--chunk_frames", "1"), [f"--chunk_frames 1: a streamed chunk must hold at least {MIN_CHUNK_FRAMES} frames"]),
    ]
    for number, (args, expected) in enumerate(cases):
        wav = tmp_path / f"{number}.wav"
        code, _, err = in_process_cli(main, "visinger.py", ("--ckpt", args[0], "--score", SANCHAEK, "--out", wav, *args[1:]), monkeypatch, capsys)
        lines = err.strip().splitlines()
        assert code == 2 and len(lines) == 1, err
        assert all(text in lines[0] for text in expected), lines[0]
        assert not wav.exists()


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
    pack, kind, _ = export_pack(fs2_ckpt, voc_ckpt, tmp_path / "pair")
    manifest = json.loads((pack / MANIFEST_FILE).read_text(encoding="utf-8"))
    assert kind == manifest["model"] == "fs2_hifigan" and manifest["prior_noise_channels"] == 0
    torch_singer = Singer.load(pack, device="cpu")  # the pair pack holds both models
    onnx_singer = Singer.load(pack, device="cpu", backend="onnx")
    wavs = [SingingSynthesizer(s.model, 16000, 160, frontend=frontend).synthesize(three_phrases()).wav for s in (torch_singer, onnx_singer)]
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


def test_a_speaker_mix_streams_as_it_renders_and_onnxruntime_sings_it_as_torch(tmp_path, frontend):
    """A two-speaker tiny VISinger sung by a mix of its speakers' embeddings: streamed through the torch
    renderer, the chunks join into the whole render; the exported graphs (speaker weights as their
    input, an id as one-hot) sing the mix and an id within the parity bound of torch."""
    torch.manual_seed(0)
    generator = make_tiny_generator(n_phones=len(PHONE_SET), n_speakers=2, gin_channels=8).eval()
    with torch.no_grad():  # random weights sing at ~3e-3; louder, so that the parity bound means something
        for parameter in generator.decoder.conv_post.parameters():
            parameter.mul_(100.0)
    synthesizer = SingingSynthesizer(generator, 2400, 12, frontend=frontend)
    plan = synthesizer.plan(three_phrases())
    mix = (0.3, 0.7)
    whole = synthesizer.render(plan, speaker_id=mix, seed=1)
    chunks = list(synthesizer.stream(plan, speaker_id=mix, seed=1, chunk_frames=MIN_CHUNK_FRAMES).chunks())
    joined = np.concatenate([c.wav for c in chunks])
    assert len(chunks) > 20 and len(joined) == len(whole.wav)
    assert np.abs(joined - whole.wav).max() <= STREAM_TOLERANCE
    # The mix is sung, not dropped: it differs from either speaker, and a one-hot mix is that speaker.
    by_id = [synthesizer.render(plan, speaker_id=i, seed=1).wav for i in range(2)]
    assert min(np.abs(whole.wav - wav).max() for wav in by_id) > 10 * PARITY
    np.testing.assert_array_equal(synthesizer.render(plan, speaker_id=(0.0, 1.0), seed=1).wav, by_id[1])

    manifest = export_graphs("visinger", (generator,), 2400, 12, tmp_path, 17, "two speakers")
    assert [i["shape"] for i in manifest["graphs"]["decoder"]["inputs"] if i["name"] == "speaker_weights"] == [[1, 2]]
    onnx_synthesizer = SingingSynthesizer(OnnxRenderer(tmp_path), 2400, 12, frontend=frontend)
    assert np.abs(onnx_synthesizer.render(plan, speaker_id=mix, seed=1).wav - whole.wav).max() <= PARITY
    assert np.abs(onnx_synthesizer.render(plan, speaker_id=1, seed=1).wav - by_id[1]).max() <= PARITY
    onnx_chunks = onnx_synthesizer.stream(plan, speaker_id=mix, seed=1, chunk_frames=MIN_CHUNK_FRAMES).chunks()
    assert np.abs(np.concatenate([c.wav for c in onnx_chunks]) - whole.wav).max() <= PARITY
    with pytest.raises(UserInputError, match="speaker weights"):
        onnx_synthesizer.render(plan, speaker_id=(0.5, 0.5, 0.0), seed=1)
