"""The onnxruntime backend: a pack folder's ONNX graphs as a `PhraseRenderer` (`--backend onnx`).

inference/export_onnx.py writes, beside a pack's usual files, `acoustic.onnx`, `decoder.onnx` and
`onnx_manifest.json`. The manifest says everything another program needs to call the graphs without
this repository: every input and output (name, dtype, shape with named dynamic axes, meaning), the
sample rate and hop, the phone set (id = index), how the noise inputs are drawn, and the decoder's
context for chunked decoding. Each ONNX file also carries the phone set in its metadata, so a graph
exported with another phone set is refused even when it is copied into another pack.

Runs on onnxruntime's CPU provider, or its CUDA provider with `device="cuda"` (onnxruntime-gpu).
"""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from config.errors import UserInputError
from inference.backends import SCORE_FIELDS, AcousticResult
from inference.speakers import SpeakerValue
from model_io.pack import ACOUSTIC_ONNX, DECODER_ONNX, ONNX_FILES, ONNX_MANIFEST_FILE  # noqa: F401 (re-exported)
from preprocessor.text.phone_set import PHONE_SET

if TYPE_CHECKING:
    from model_io.saved import SavedModels

ONNX_FORMAT = "korean-svs-onnx"
ONNX_FORMAT_VERSION = 2  # 2: the acoustic graph takes f0 (NaN = predict); decoders of every kind
MANIFEST_FILE = ONNX_MANIFEST_FILE
PHONE_SET_METADATA = "phone_set"  # metadata_props key of every exported graph: the JSON list of phones
ONNXRUNTIME_PIN = "onnxruntime==1.31.1"


def phone_set_digest(phones: list[str] | tuple[str, ...]) -> str:
    return hashlib.sha256(json.dumps(list(phones), ensure_ascii=False).encode("utf-8")).hexdigest()[:16]


def how_to_export(pack: Path) -> str:
    return f"export them with: python inference/export_onnx.py --ckpt {pack} --out DIR (then --ckpt DIR --backend onnx)"


def _check_phone_set(phones: Any, where: str) -> None:
    """`phones` (from a manifest or a graph's metadata) must be this code's phone set, id for id."""
    if not isinstance(phones, list):
        raise UserInputError(f"{where}: no phone set recorded; re-export it with inference/export_onnx.py")
    if phones == list(PHONE_SET):
        return
    first = next((i for i, (a, b) in enumerate(zip(phones, PHONE_SET)) if a != b), min(len(phones), len(PHONE_SET)))
    theirs = phones[first] if first < len(phones) else "<end>"
    ours = PHONE_SET[first] if first < len(PHONE_SET) else "<end>"
    raise UserInputError(
        f"{where}: exported with another phone set ({len(phones)} phones, this code has {len(PHONE_SET)}; "
        f"they first differ at id {first}: {theirs!r} vs {ours!r}); re-export it with this code version"
    )


def read_manifest(pack: Path) -> dict[str, Any]:
    """The pack's ONNX manifest, checked (format, version, phone set); one-line errors otherwise."""
    path = pack / MANIFEST_FILE
    if not pack.is_dir():
        raise UserInputError(f"{pack}: --backend onnx needs a pack folder with ONNX files, not a checkpoint file; {how_to_export(pack)}")
    if not path.is_file():
        raise UserInputError(f"{pack}: no ONNX files in this pack ({MANIFEST_FILE} missing); {how_to_export(pack)}")
    try:
        manifest = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as error:
        raise UserInputError(f"{path}: not a readable manifest ({type(error).__name__}); re-export the pack") from None
    if not isinstance(manifest, dict) or manifest.get("format") != ONNX_FORMAT or manifest.get("version") != ONNX_FORMAT_VERSION:
        raise UserInputError(f"{path}: not a {ONNX_FORMAT} v{ONNX_FORMAT_VERSION} manifest; re-export the pack with this code")
    _check_phone_set(manifest.get("phone_set"), str(path))
    return manifest


def _import_onnxruntime():
    try:
        import onnxruntime
    except ImportError:
        raise UserInputError(f"--backend onnx: onnxruntime is not installed; pip install {ONNXRUNTIME_PIN} (or use --backend torch)") from None
    return onnxruntime


def providers_for(device: str) -> list[str]:
    """onnxruntime providers for `device`: CPU, or CUDA (with CPU for what CUDA lacks) when this onnxruntime has it."""
    ort = _import_onnxruntime()
    if device == "cuda":
        if "CUDAExecutionProvider" not in ort.get_available_providers():
            raise UserInputError("--device cuda --backend onnx: this onnxruntime has no CUDA provider; install onnxruntime-gpu or use --device cpu")
        return ["CUDAExecutionProvider", "CPUExecutionProvider"]
    return ["CPUExecutionProvider"]


def open_session(path: Path, device: str = "cpu", threads: int | None = None):
    """An onnxruntime session of `path`, after checking the phone set in its metadata."""
    ort = _import_onnxruntime()
    if not path.is_file():
        raise UserInputError(f"{path}: missing (the manifest lists it); {how_to_export(path.parent)}")
    options = ort.SessionOptions()
    if threads:
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
    try:
        session = ort.InferenceSession(str(path), sess_options=options, providers=providers_for(device))
    except UserInputError:
        raise
    except Exception as error:  # onnxruntime raises its own exception types for a corrupt or foreign file
        raise UserInputError(f"{path}: onnxruntime cannot load it ({type(error).__name__}); re-export the pack") from None
    metadata = session.get_modelmeta().custom_metadata_map
    if PHONE_SET_METADATA not in metadata:
        raise UserInputError(f"{path}: not exported by inference/export_onnx.py (no phone set in its metadata); re-export it")
    _check_phone_set(json.loads(metadata[PHONE_SET_METADATA]), str(path))
    return session


class OnnxRenderer:
    """The graphs of a pack run by onnxruntime, with `TorchRenderer`'s interface (inference/backends.py)."""

    name = "onnx"

    def __init__(self, pack: Path, device: str = "cpu", threads: int | None = None) -> None:
        self.pack = Path(pack)
        self.manifest = manifest = read_manifest(self.pack)
        graphs = manifest["graphs"]
        self.acoustic_session = open_session(self.pack / graphs["acoustic"]["file"], device, threads)
        self.decoder_session = open_session(self.pack / graphs["decoder"]["file"], device, threads)
        self.sample_rate = int(manifest["sample_rate"])
        self.hop_size = int(manifest["hop_size"])
        self.prior_noise_channels = int(manifest["prior_noise_channels"])
        self.uses_f0 = bool(manifest["decoder_uses_f0"])
        self.uses_noise = bool(manifest["decoder_uses_noise"])
        self.n_speakers = int(manifest["n_speakers"])
        self.context_frames = int(manifest["decoder_context_frames"])
        self.kind = manifest["model"]
        self._acoustic_inputs = {i.name for i in self.acoustic_session.get_inputs()}
        self._decoder_inputs = {i.name for i in self.decoder_session.get_inputs()}

    def _speaker(self, feeds: dict[str, np.ndarray], names: set[str], speaker_id: SpeakerValue) -> None:
        """`speaker_weights [1, n_speakers]`: the mix, or one-hot for an id (the embedding row exactly)."""
        if "speaker_weights" in names:
            if isinstance(speaker_id, tuple):
                weights = np.array([speaker_id], dtype=np.float32)
            else:
                weights = np.zeros((1, self.n_speakers), dtype=np.float32)
                weights[0, int(speaker_id)] = 1.0
            feeds["speaker_weights"] = weights
        elif "speaker_id" in names:  # a pack exported before speaker mixes: ids only
            if isinstance(speaker_id, tuple):
                raise UserInputError(f"{self.pack}: these graphs take one speaker id, not a mix; re-export the pack with inference/export_onnx.py to sing mixes")
            feeds["speaker_id"] = np.array([speaker_id], dtype=np.int64)

    def acoustic(
        self, score: dict[str, np.ndarray], f0: np.ndarray | None, prior_noise: np.ndarray | None, noise_scale: float, speaker_id: SpeakerValue
    ) -> AcousticResult:
        feeds = {key: np.ascontiguousarray(score[key]) for key in SCORE_FIELDS}
        n_frames = int(score["phone_frames"].sum())
        given = np.full(n_frames, np.nan, dtype=np.float32) if f0 is None else f0.astype(np.float32)
        feeds["given_f0"] = given.reshape(1, -1)  # NaN frames: the graph's prediction
        if "prior_noise" in self._acoustic_inputs:
            if prior_noise is None:
                raise ValueError("this graph takes the prior's noise: pass prior_noise [1, C, T]")
            feeds["prior_noise"] = prior_noise.astype(np.float32, copy=False)
            feeds["noise_scale"] = np.array(noise_scale, dtype=np.float32)
        self._speaker(feeds, self._acoustic_inputs, speaker_id)
        latent, sung = self.acoustic_session.run(["latent", "f0"], feeds)
        return AcousticResult(latent[0], sung[0])

    def decode(self, latent: np.ndarray, f0: np.ndarray, source_noise: np.ndarray | None, start_phase: float, speaker_id: SpeakerValue) -> np.ndarray:
        feeds = {"latent": np.ascontiguousarray(latent[None], dtype=np.float32)}
        if self.uses_f0:
            feeds["f0"] = np.ascontiguousarray(f0[None], dtype=np.float32)
            feeds["start_phase"] = np.array([start_phase], dtype=np.float64)
        if self.uses_noise:
            if source_noise is None:
                raise ValueError("this decoder draws noise: pass source_noise [t * hop]")
            feeds["source_noise"] = np.ascontiguousarray(source_noise.reshape(1, 1, -1), dtype=np.float32)
        self._speaker(feeds, self._decoder_inputs, speaker_id)
        (wav,) = self.decoder_session.run(["wav"], feeds)
        return wav[0, 0]


def load_onnx_singer(pack: Path, device: str = "cpu", threads: int | None = None) -> tuple[OnnxRenderer, SavedModels]:
    """A pack's ONNX graphs as an `OnnxRenderer`, with the pack's `SavedModels` (its description: audio
    settings, phone set, trained note range); the torch weights are read but no network is built.
    The pack's audio settings must agree with the manifest. `inference.api.Singer.load(pack, backend="onnx")` calls this.
    """
    from model_io.loader import load_saved

    pack = Path(pack)
    renderer = OnnxRenderer(pack, device, threads)
    saved = load_saved(pack)
    audio = saved.description.audio
    if (audio.sample_rate, audio.hop_size) != (renderer.sample_rate, renderer.hop_size):
        raise UserInputError(
            f"{pack / MANIFEST_FILE}: graphs for {renderer.sample_rate} Hz / hop {renderer.hop_size}, but the pack's model.pt says "
            f"{audio.sample_rate} Hz / hop {audio.hop_size}; re-export the pack"
        )
    return renderer, saved
