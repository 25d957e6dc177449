"""`atomic_io.replace_directory`: a finished folder replaces the old one in one step, or the old one stays."""
from __future__ import annotations

import pytest

import preprocessor.atomic_io as atomic_io
from preprocessor.atomic_io import replace_directory, staging_directory


def _fill(folder, **files):
    for name, text in files.items():
        (folder / name).parent.mkdir(parents=True, exist_ok=True)
        (folder / name).write_text(text)


@pytest.mark.parametrize("exchange", [True, False], ids=["renameat2-exchange", "rename-aside"])
def test_the_new_folder_replaces_the_old_one_whole(tmp_path, monkeypatch, exchange):
    if not exchange:
        monkeypatch.setattr(atomic_io, "_exchange_paths", lambda a, b: False)
    target = tmp_path / "binary"
    _fill(target, **{"train/meta.json": "old", "test/meta.json": "old", "f0_stats.json": "old"})
    staging = staging_directory(target)
    assert staging.parent == tmp_path and staging.name.startswith(".binary.staging-")
    _fill(staging, **{"train/meta.json": "new", "valid/meta.json": "new"})
    replace_directory(staging, target)
    assert sorted(p.relative_to(target).as_posix() for p in target.rglob("*") if p.is_file()) == ["train/meta.json", "valid/meta.json"]
    assert (target / "train/meta.json").read_text() == "new"
    assert [p.name for p in tmp_path.iterdir()] == ["binary"]  # no staging or old folder left


def test_a_first_build_and_stale_staging_folders(tmp_path):
    target = tmp_path / "binary"
    stale = tmp_path / ".binary.staging-killed"
    stale.mkdir()
    staging = staging_directory(target)  # removes what a killed run left
    assert not stale.exists()
    _fill(staging, **{"a.txt": "x"})
    replace_directory(staging, target)
    assert (target / "a.txt").read_text() == "x" and [p.name for p in tmp_path.iterdir()] == ["binary"]
