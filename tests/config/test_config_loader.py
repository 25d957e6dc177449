"""Config inheritance, deep merge, typed overrides and strict dataclass sections."""
from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pytest

from config.errors import UserInputError
from config.loader import build_dataclass, config_section, load_config, parse_overrides, save_config


def write(path: Path, text: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return path


def test_base_config_string_list_relative_and_deep_merge(tmp_path):
    write(tmp_path / "bases/a.yaml", "audio: {sample_rate: 24000, hop_size: 300}\nname: a\nlist: [1, 2]\n")
    write(tmp_path / "bases/b.yaml", "base_config: a.yaml\naudio: {hop_size: 256}\nname: b\n")
    write(tmp_path / "c.yaml", "audio: {n_mels: 80}\nextra: 1\n")
    child = write(tmp_path / "models/child.yaml", "base_config: [../bases/b.yaml, ../c.yaml]\nname: child\nlist: [3]\n")
    cfg = load_config(child)
    assert cfg == {
        "audio": {"sample_rate": 24000, "hop_size": 256, "n_mels": 80},
        "name": "child",
        "list": [3],  # lists are replaced, not concatenated
        "extra": 1,
    }
    assert "base_config" not in cfg


def test_overrides_are_yaml_values_and_typed(tmp_path):
    path = write(tmp_path / "x.yaml", "a: {b: 1.5}\nc: [0]\nd: old\nflag: false\nn: 3\n")
    cfg = load_config(path, "a.b=3,c=[1,2],d=text,flag=true,n=7")
    assert cfg == {"a": {"b": 3.0}, "c": [1, 2], "d": "text", "flag": True, "n": 7}
    assert isinstance(cfg["a"]["b"], float)
    assert parse_overrides("x=[1, 2],y={k: v},z='a,b'") == {"x": [1, 2], "y": {"k": "v"}, "z": "a,b"}


def test_override_of_unknown_key_names_closest(tmp_path):
    path = write(tmp_path / "x.yaml", "optim: {lr: 0.1}\nmax_updates: 10\n")
    with pytest.raises(UserInputError, match="unknown config key 'max_update'.*did you mean 'max_updates'"):
        load_config(path, "max_update=5")
    with pytest.raises(UserInputError, match="did you mean 'optim.lr'"):
        load_config(path, "optim.lrr=5")


def test_override_type_mismatch_is_an_error(tmp_path):
    path = write(tmp_path / "x.yaml", "n: 3\nflag: true\n")
    with pytest.raises(UserInputError, match="'n' must be a int"):
        load_config(path, "n=abc")
    with pytest.raises(UserInputError, match="'flag'"):
        load_config(path, "flag=False_")


def test_missing_base_and_cycle_and_bad_yaml(tmp_path):
    path = write(tmp_path / "x.yaml", "base_config: nope.yaml\n")
    with pytest.raises(UserInputError, match="nope.yaml: config file not found"):
        load_config(path)
    write(tmp_path / "p.yaml", "base_config: q.yaml\n")
    write(tmp_path / "q.yaml", "base_config: p.yaml\n")
    with pytest.raises(UserInputError, match="cycle"):
        load_config(tmp_path / "p.yaml")
    bad = write(tmp_path / "bad.yaml", "a: [1, 2\n")
    with pytest.raises(UserInputError, match="bad.yaml line"):
        load_config(bad)


@dataclass(frozen=True)
class Section:
    sample_rate: int
    hop_size: int = 300
    rates: tuple[int, ...] = (5, 4)
    fmax: float | None = None


def test_config_section_strict_keys():
    cfg = {"audio": {"sample_rate": 24000, "rates": [5, 5], "fmax": 12000}}
    section = config_section(cfg, Section, "audio")
    assert section == Section(24000, 300, (5, 5), 12000.0)
    with pytest.raises(UserInputError, match="unknown key 'audio.hop_sise'; did you mean 'audio.hop_size'"):
        build_dataclass(Section, {"sample_rate": 1, "hop_sise": 2}, "audio")
    with pytest.raises(UserInputError, match="missing required key 'audio.sample_rate'"):
        build_dataclass(Section, {}, "audio")
    with pytest.raises(UserInputError, match="audio.sample_rate: expected an integer"):
        build_dataclass(Section, {"sample_rate": "24k"}, "audio")
    with pytest.raises(UserInputError, match="missing required section 'model'"):
        config_section(cfg, Section, "model")


def test_resolved_config_round_trips(tmp_path):
    cfg = {"a": {"b": [1, 2.5, "x"]}, "lyric": "머리 어깨", "none": None, "flag": True}
    save_config(cfg, tmp_path / "out/config.yaml")
    assert load_config(tmp_path / "out/config.yaml") == cfg
    assert [p.name for p in (tmp_path / "out").iterdir()] == ["config.yaml"]  # no temporary left behind


def test_duplicate_keys_are_errors_at_any_level(tmp_path):
    top = write(tmp_path / "top.yaml", "trainer: {max_updates: 3}\naudio: {}\ntrainer: {max_updates: 5}\n")
    with pytest.raises(UserInputError, match=r"top\.yaml line 3, column 1: invalid YAML \(duplicate key 'trainer' \(first at line 1\)"):
        load_config(top)
    nested = write(tmp_path / "nested.yaml", "optim:\n  lr: 1.0e-4\n  betas: [0.8, 0.99]\n  lr: 2.0e-4\n")
    with pytest.raises(UserInputError, match=r"nested\.yaml line 4, column 3: .*duplicate key 'lr' \(first at line 2\)"):
        load_config(nested)
    # YAML merge keys (<<) are not duplicates; a key after them overrides as YAML defines.
    merged = write(tmp_path / "merge.yaml", "a: &base {x: 1, y: 2}\nb:\n  <<: *base\n  y: 3\n")
    assert load_config(merged)["b"] == {"x": 1, "y": 3}


def test_a_config_that_is_not_utf8_is_one_line_naming_the_line(tmp_path):
    path = tmp_path / "korean.yaml"
    path.write_bytes("audio: {}\n# 설명\n".encode("cp949"))
    with pytest.raises(UserInputError) as error:
        load_config(path)
    message = str(error.value)
    assert message.startswith(f"{path} line 2: not UTF-8 text (byte 12") and message.endswith("save the config file as UTF-8")


def test_unknown_section_names_the_closest_known_one():
    from config.loader import check_sections

    check_sections({"trainer": {}, "audio": {}}, ("trainer", "audio", "model"), "c.yaml")
    with pytest.raises(UserInputError, match=r"^c\.yaml: unknown config section 'trainr'; did you mean 'trainer'\?$"):
        check_sections({"trainr": {}}, ("trainer", "audio"), "c.yaml")
    with pytest.raises(UserInputError, match=r"unknown config section 'zzz'; known sections: audio, trainer"):
        check_sections({"zzz": 1}, ("trainer", "audio"), "c.yaml")


def test_training_and_data_configs_reject_unknown_sections_and_keys(tmp_path):
    from preprocessor.settings import data_pipeline_settings
    from tasks.experiment import plan_training

    repo = Path(__file__).resolve().parents[2]
    demo = repo / "config/models/visinger_demo.yaml"
    typo = write(tmp_path / "typo.yaml", f"base_config: {demo}\ntrainr:\n  max_updates: 3\n")
    with pytest.raises(UserInputError, match=r"typo\.yaml \(task VISingerTask\): unknown config section 'trainr'; did you mean 'trainer'\?"):
        plan_training(str(typo), "x", None, False, str(tmp_path / "ck"))
    nested = write(tmp_path / "nested.yaml", f"base_config: {demo}\ndataset:\n  binary_dri: x\n")
    with pytest.raises(UserInputError, match=r"unknown key 'dataset\.binary_dri'; did you mean 'dataset\.binary_dir'\?"):
        plan_training(str(nested), "x", None, False, str(tmp_path / "ck"))
    data = load_config(repo / "config/datasets/svs/demo/preprocess.yaml")
    with pytest.raises(UserInputError, match=r"^d\.yaml: unknown config section 'segmnt'; did you mean 'segment'\?"):
        data_pipeline_settings({**data, "segmnt": {}}, "d.yaml")
    assert data_pipeline_settings(load_config(demo)).dataset.name  # a training config also serves the data CLIs
