"""A random-access, memory-mapped store of binarized items — no pickle anywhere.

One folder per split: `meta.json` (format version, fields, per-item offsets and lengths) and one
raw `<field>.bin` per field holding every item's array back to back along its first axis. Reading
maps the files (`np.memmap`), so opening a split costs nothing and workers share pages. A pickle
from an untrusted source can run code; raw arrays plus JSON cannot.

Layout per item (see docs/ARCHITECTURE.md): `wav` int16 [S], `mel` float32 [T, n_mels] (time-major
on disk so items concatenate along time), `f0` float32 [T], `uv` uint8 [T], `energy` float32 [T],
`phone_ids`/`phone_frames`/`note_pitch` int64 [P], `note_dur` float32 [P], `slur` uint8 [P].
Scalars (`speaker_id`) and names live in `meta.json`.
"""
from __future__ import annotations

import json
import os
import shutil
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from config.errors import UserInputError

FORMAT_VERSION = 1


@dataclass(frozen=True)
class FieldSpec:
    dtype: str
    trailing_shape: tuple[int, ...] = ()


def svs_fields(n_mels: int) -> dict[str, FieldSpec]:
    """The fields of a singing-voice item, for a mel of `n_mels` bins."""
    return {
        "wav": FieldSpec("int16"),
        "mel": FieldSpec("float32", (n_mels,)),
        "f0": FieldSpec("float32"),
        "uv": FieldSpec("uint8"),
        "energy": FieldSpec("float32"),
        "phone_ids": FieldSpec("int64"),
        "phone_frames": FieldSpec("int64"),
        "note_pitch": FieldSpec("int64"),
        "note_dur": FieldSpec("float32"),
        "slur": FieldSpec("uint8"),
    }


class BinaryDatasetWriter:
    """Streams items into `<split_dir>.partial/` and renames it to `split_dir` on `finalize()`.

    A crash midway leaves the previous split (if any) untouched and a `.partial` folder that the
    next run replaces.
    """

    def __init__(self, split_dir: Path, fields: dict[str, FieldSpec], attributes: dict[str, Any] | None = None):
        self.split_dir = Path(split_dir)
        self.fields = fields
        self.attributes = dict(attributes or {})
        self.partial_dir = self.split_dir.with_name(self.split_dir.name + ".partial")
        if self.partial_dir.exists():
            shutil.rmtree(self.partial_dir)
        self.partial_dir.mkdir(parents=True)
        self._handles = {name: open(self.partial_dir / f"{name}.bin", "wb") for name in fields}
        self._offsets = {name: 0 for name in fields}
        self._items: list[dict[str, Any]] = []

    def add(self, name: str, arrays: dict[str, np.ndarray], scalars: dict[str, Any]) -> None:
        """Append one item; `arrays` must hold every field with the declared dtype and trailing shape."""
        if set(arrays) != set(self.fields):
            raise ValueError(f"item {name}: fields {sorted(arrays)} != declared {sorted(self.fields)}")
        entry: dict[str, Any] = {"name": name, **scalars, "offsets": {}, "lengths": {}}
        for field, spec in self.fields.items():
            array = np.ascontiguousarray(arrays[field], dtype=spec.dtype)
            if array.shape[1:] != spec.trailing_shape:
                raise ValueError(f"item {name}: field {field} has shape {array.shape}, expected [N, *{spec.trailing_shape}]")
            self._handles[field].write(array.tobytes())
            entry["offsets"][field] = self._offsets[field]
            entry["lengths"][field] = int(array.shape[0])
            self._offsets[field] += int(array.shape[0])
        self._items.append(entry)

    def finalize(self) -> None:
        for handle in self._handles.values():
            handle.flush()
            os.fsync(handle.fileno())
            handle.close()
        meta = {
            "format_version": FORMAT_VERSION,
            "fields": {n: {"dtype": s.dtype, "trailing_shape": list(s.trailing_shape), "total": self._offsets[n]} for n, s in self.fields.items()},
            "attributes": self.attributes,
            "items": self._items,
        }
        with open(self.partial_dir / "meta.json", "w", encoding="utf-8") as handle:
            json.dump(meta, handle, ensure_ascii=False)
        if self.split_dir.exists():
            shutil.rmtree(self.split_dir)
        os.replace(self.partial_dir, self.split_dir)


REBINARIZE = "re-run preprocessor/runs/base_binarize.py to rebuild the dataset"


def _read_json_object(path: Path, what: str) -> dict[str, Any]:
    """A JSON object from `path`, or one line naming the file and saying to re-binarize."""
    try:
        document = json.loads(path.read_bytes().decode("utf-8"))
    except OSError as error:
        raise UserInputError(f"{path}: cannot read the {what} ({error.strerror}); {REBINARIZE}") from None
    except UnicodeDecodeError as error:
        raise UserInputError(f"{path}: the {what} is not UTF-8 text (byte {error.start}); {REBINARIZE}") from None
    except json.JSONDecodeError as error:
        raise UserInputError(f"{path}: the {what} is corrupt (invalid JSON at line {error.lineno}, column {error.colno}: {error.msg}); {REBINARIZE}") from None
    if not isinstance(document, dict):
        raise UserInputError(f"{path}: the {what} is corrupt (a JSON {type(document).__name__}, not an object); {REBINARIZE}")
    return document


def _is_count(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool) and value >= 0


def read_meta(meta_path: Path) -> dict[str, Any]:
    """`meta.json` of a split, checked entry by entry (a truncated or edited file is one line, not a traceback)."""
    meta = _read_json_object(meta_path, "binary split metadata")

    def corrupt(detail: str) -> UserInputError:
        return UserInputError(f"{meta_path}: corrupt binary split metadata ({detail}); {REBINARIZE}")

    version = meta.get("format_version")
    if version != FORMAT_VERSION:
        raise UserInputError(f"{meta_path}: binary format version {version}, this code reads version {FORMAT_VERSION}; {REBINARIZE}")
    fields, attributes, items = meta.get("fields"), meta.get("attributes"), meta.get("items")
    if not isinstance(fields, dict) or not fields:
        raise corrupt("'fields' must be a non-empty object")
    if not isinstance(attributes, dict):
        raise corrupt("'attributes' must be an object")
    if not isinstance(items, list):
        raise corrupt("'items' must be a list")
    for name, spec in fields.items():
        try:
            valid = np.dtype(spec["dtype"]) is not None and _is_count(spec["total"])
            valid = valid and isinstance(spec["trailing_shape"], list) and all(_is_count(d) for d in spec["trailing_shape"])
        except (TypeError, KeyError):
            valid = False
        if not valid:
            raise corrupt(f"field '{name}' needs a dtype, a trailing_shape list and a total count")
    for index, item in enumerate(items):
        where = f"item {index}"
        if not isinstance(item, dict) or not isinstance(item.get("name"), str):
            raise corrupt(f"{where} has no name")
        offsets, lengths = item.get("offsets"), item.get("lengths")
        if not isinstance(offsets, dict) or not isinstance(lengths, dict) or set(offsets) != set(fields) or set(lengths) != set(fields):
            raise corrupt(f"{where} ({item['name']}) must have an offset and a length for every field")
        for name in fields:
            start, length = offsets[name], lengths[name]
            if not (_is_count(start) and _is_count(length)) or start + length > fields[name]["total"]:
                raise corrupt(f"{where} ({item['name']}), field '{name}': offset {start!r} + length {length!r} is outside 0..{fields[name]['total']}")
    return meta


def read_f0_stats(path: Path, may_be_empty: bool = False) -> dict[str, Any]:
    """`f0_stats.json` of a binary dataset, checked (finite log-F0 mean, positive std, MIDI pitch range).

    may_be_empty: accept ``{}`` (a packed model whose training data had no statistics).
    """
    import math

    stats = _read_json_object(path, "F0 statistics")
    if may_be_empty and not stats:
        return stats

    for key in ("log_f0_mean", "log_f0_std"):
        value = stats.get(key)
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or (key == "log_f0_std" and value <= 0):
            raise UserInputError(f"{path}: corrupt F0 statistics ('{key}' is {value!r}); {REBINARIZE}")
    for key in ("note_pitch_min", "note_pitch_max"):
        if key in stats and not (_is_count(stats[key]) and stats[key] <= 127):
            raise UserInputError(f"{path}: corrupt F0 statistics ('{key}' is {stats[key]!r}); {REBINARIZE}")
    speakers = stats.get("speakers", [])
    if not isinstance(speakers, list) or not all(isinstance(name, str) and name for name in speakers) or len(set(speakers)) != len(speakers):
        raise UserInputError(f"{path}: corrupt F0 statistics ('speakers' is {speakers!r}, not a list of distinct names); {REBINARIZE}")
    return stats


class BinaryDataset:
    """Random access to the items of one split, memory-mapped.

    `dataset[i]` is a dict of numpy arrays (copies, safe to hand to torch) plus the item's scalars.
    `lengths` holds each item's frame count, for bucketing.
    """

    def __init__(self, split_dir: Path | str):
        self.split_dir = Path(split_dir)
        meta_path = self.split_dir / "meta.json"
        if not meta_path.is_file():
            raise UserInputError(f"{meta_path}: binary split not found; run preprocessor/runs/base_binarize.py with this dataset config first")
        meta = read_meta(meta_path)
        self.attributes: dict[str, Any] = meta["attributes"]
        self.items: list[dict[str, Any]] = meta["items"]
        self._arrays = {}
        for name, spec in meta["fields"].items():
            shape = (spec["total"], *spec["trailing_shape"])
            path = self.split_dir / f"{name}.bin"
            expected = int(np.prod(shape)) * np.dtype(spec["dtype"]).itemsize
            if not path.is_file() or path.stat().st_size != expected:
                raise UserInputError(f"{path}: missing or truncated ({expected} bytes expected); re-run base_binarize.py")
            # np.memmap refuses empty files; an empty field is an empty array.
            self._arrays[name] = np.memmap(path, dtype=spec["dtype"], mode="r", shape=shape) if expected else np.zeros(shape, spec["dtype"])
        self.lengths = [int(item["lengths"]["f0"]) if "f0" in item["lengths"] else int(next(iter(item["lengths"].values()))) for item in self.items]
        self.names = [item["name"] for item in self.items]

    def __len__(self) -> int:
        return len(self.items)

    def __getitem__(self, index: int) -> dict[str, Any]:
        item = self.items[index]
        out: dict[str, Any] = {k: v for k, v in item.items() if k not in ("offsets", "lengths")}
        for field, array in self._arrays.items():
            start = item["offsets"][field]
            out[field] = np.array(array[start : start + item["lengths"][field]])
        return out
