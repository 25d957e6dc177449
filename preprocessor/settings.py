"""Typed settings for the data pipeline, built strictly from the YAML sections of a dataset config.

Each dataclass mirrors one YAML section one to one (`dataset:`, `segment:`, `preprocess:`); the
audio section is `preprocessor.audio.AudioSettings`. An unknown or missing key is an error that
names it (see `config.loader.config_section`).
"""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from config.loader import check_sections, config_section
from preprocessor.augment import AugmentationSettings


LAYOUTS = ("auto", "final", "early", "folder", "diffsinger")
# Characters a speaker name may not hold: `--speaker a:0.7,b:0.3` mixes voices by name.
SPEAKER_NAME_RESERVED = (",", ":", " ")


def check_speaker_name(name: str, where: str) -> None:
    if not name or any(c in name for c in SPEAKER_NAME_RESERVED) or name.strip() != name:
        raise ValueError(f"{where}: speaker name {name!r} must be non-empty, without spaces, ',' or ':' (the --speaker mix syntax)")


@dataclass(frozen=True)
class SourceSettings:
    """One singer's recordings in a multi-speaker dataset (`dataset.sources[i]`).

    valid_songs / test_songs: None = the dataset's lists. layout / demo_corpus / demo_voice: as in
    `DatasetSettings`.
    """

    speaker: str
    raw_data_dir: str
    layout: str = "auto"
    demo_corpus: bool = False
    demo_voice: str = "default"
    valid_songs: tuple[str, ...] | None = None
    test_songs: tuple[str, ...] | None = None

    def __post_init__(self) -> None:
        check_speaker_name(self.speaker, "sources")
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got '{self.layout}'")


@dataclass(frozen=True)
class DatasetSettings:
    """Where a dataset lives and how it splits.

    valid_songs / test_songs name songs (`kr046`: both keys) or single recordings (`kr046a`).
    demo_corpus: generate the embedded demo corpus into raw_data_dir when it is missing, sung by
    `demo_voice` (a name of `preprocessor.demo_corpus.DEMO_VOICES`).
    layout: `final` / `early` (CSD's two releases), `auto` (either), `folder` (recordings each with a
    score file, preprocessor/folder_reader.py) or `diffsinger` (`transcriptions.csv` + `wavs/`).
    sources: several singers in one dataset (speaker ids and per-speaker statistics in one store);
    each names its `speaker` and `raw_data_dir`. With sources, leave the top-level `raw_data_dir` and
    `speaker` out.
    """

    name: str
    processed_dir: str
    binary_dir: str
    raw_data_dir: str = ""
    speaker: str = ""
    valid_songs: tuple[str, ...] = ()
    test_songs: tuple[str, ...] = ()
    layout: str = "auto"
    demo_corpus: bool = False
    demo_voice: str = "default"
    sources: tuple[SourceSettings, ...] = ()

    def __post_init__(self) -> None:
        if self.layout not in LAYOUTS:
            raise ValueError(f"layout must be one of {', '.join(LAYOUTS)}, got '{self.layout}'")
        if self.sources:
            if self.raw_data_dir or self.speaker:
                raise ValueError("with 'sources', name each singer's raw_data_dir and speaker there and leave the top-level ones out")
            names = [source.speaker for source in self.sources]
            twins = sorted({name for name in names if names.count(name) > 1})
            if twins:
                raise ValueError(f"speaker '{twins[0]}' is named by two sources; give each source its own speaker name")
        else:
            if not self.raw_data_dir or not self.speaker:
                raise ValueError("give raw_data_dir and speaker (or a list of 'sources', one per singer)")
            check_speaker_name(self.speaker, "speaker")

    def source_list(self) -> tuple[SourceSettings, ...]:
        """The singers' recordings: `sources`, or the one source the top-level keys describe."""
        if self.sources:
            return self.sources
        return (SourceSettings(self.speaker, self.raw_data_dir, self.layout, self.demo_corpus, self.demo_voice, self.valid_songs, self.test_songs),)


@dataclass(frozen=True)
class SegmentSettings:
    """How songs are cut into segments (see preprocessor/segmenter.py)."""

    min_rest_seconds: float = 0.3
    max_segment_seconds: float = 12.0
    max_edge_rest_seconds: float = 0.5

    def __post_init__(self) -> None:
        if self.min_rest_seconds <= 0 or self.max_segment_seconds <= 0 or self.max_edge_rest_seconds < 0:
            raise ValueError("min_rest_seconds and max_segment_seconds must be > 0, max_edge_rest_seconds >= 0")


@dataclass(frozen=True)
class PreprocessSettings:
    """Parallelism of the two data runners."""

    num_workers: int = 2

    def __post_init__(self) -> None:
        if self.num_workers < 1:
            raise ValueError(f"num_workers must be >= 1, got {self.num_workers}")


@dataclass(frozen=True)
class FeatureSettings:
    """`features:` — optional per-frame features binarization extracts (energy is always there).

    breathiness: DiffSinger's breathiness, the RMS of the WORLD-separated aperiodic part in dB
    (`preprocessor.variance`); needed by a model with `model.variance_controls: true`.
    """

    breathiness: bool = False


@dataclass(frozen=True)
class DataPipelineSettings:
    audio: Any  # preprocessor.audio.AudioSettings (imported lazily: it pulls in torch)
    dataset: DatasetSettings
    segment: SegmentSettings
    preprocess: PreprocessSettings
    features: FeatureSettings = FeatureSettings()
    augmentation: AugmentationSettings = AugmentationSettings()

    @property
    def processed_dir(self) -> Path:
        return Path(self.dataset.processed_dir)

    @property
    def binary_dir(self) -> Path:
        return Path(self.dataset.binary_dir)


DATA_SECTIONS = ("audio", "dataset", "segment", "preprocess", "features", "augmentation")
# The sections of a training config (which includes a dataset config through base_config): the data
# CLIs accept such a config and leave these to tasks/runs/run.py, which checks them against the task.
TRAINING_SECTIONS = ("task_cls", "trainer", "optimizers", "model", "discriminator", "loss_weights", "training", "validation", "infer")


def check_data_sections(cfg: dict[str, Any]) -> None:
    """Every data-pipeline section that is present, checked key by key (unknown keys name the closest)."""
    from preprocessor.audio import AudioSettings

    for key, cls in zip(DATA_SECTIONS, (AudioSettings, DatasetSettings, SegmentSettings, PreprocessSettings, FeatureSettings, AugmentationSettings)):
        if key in cfg:
            config_section(cfg, cls, key)


def data_pipeline_settings(cfg: dict[str, Any], source: str = "config") -> DataPipelineSettings:
    """The four data sections; any top-level section that no stage reads is an error (a typo)."""
    from preprocessor.audio import AudioSettings

    check_sections(cfg, (*DATA_SECTIONS, *TRAINING_SECTIONS), source)
    return DataPipelineSettings(
        audio=config_section(cfg, AudioSettings, "audio"),
        dataset=config_section(cfg, DatasetSettings, "dataset"),
        segment=config_section(cfg, SegmentSettings, "segment"),
        preprocess=config_section(cfg, PreprocessSettings, "preprocess"),
        features=config_section(cfg, FeatureSettings, "features") if "features" in cfg else FeatureSettings(),
        augmentation=config_section(cfg, AugmentationSettings, "augmentation") if "augmentation" in cfg else AugmentationSettings(),
    )
