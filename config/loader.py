"""YAML configs with `base_config` inheritance, deep merge and typed command-line overrides.

A config file may name one or several bases::

    base_config: ../base.yaml            # or a list: [a.yaml, b.yaml]

Bases are loaded first (in list order, later ones win), then the file itself is merged on top.
Paths are relative to the file that names them. Dicts merge key by key; any other value (lists
included) is replaced whole. `--hparams "a.b=3,c=[1,2],d=text"` overrides are parsed as YAML
values, and overriding a key that does not exist is an error naming the closest existing key:
a typo must never create a new setting that nothing reads.

Only runners, tasks and inference call this module; `modules/` receive plain typed arguments.
"""
from __future__ import annotations

import dataclasses
import difflib
import os
import tempfile
import typing
from pathlib import Path
from typing import Any, TypeVar

import yaml

from config.errors import UserInputError

BASE_KEY = "base_config"


class _StrictSafeLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` that rejects a key written twice in one mapping (PyYAML keeps the last silently)."""


def _construct_unique_mapping(loader: _StrictSafeLoader, node: yaml.MappingNode, deep: bool = False) -> dict[Any, Any]:
    seen: dict[Any, yaml.Node] = {}
    for key_node, _ in node.value:  # the keys written here; keys merged in with << may be overridden
        if key_node.tag == "tag:yaml.org,2002:merge":
            continue
        key = loader.construct_object(key_node, deep=deep)
        try:
            first = seen.get(key)
        except TypeError:  # an unhashable key: SafeLoader's own error says so
            break
        if first is not None:
            raise yaml.constructor.ConstructorError(
                None, None, f"duplicate key {key!r} (first at line {first.start_mark.line + 1}); keep one of them", key_node.start_mark
            )
        seen[key] = key_node
    return loader.construct_mapping(node, deep=deep)


_StrictSafeLoader.add_constructor(yaml.resolver.BaseResolver.DEFAULT_MAPPING_TAG, _construct_unique_mapping)


def safe_load_strict(text: str) -> Any:
    """`yaml.safe_load` that raises `yaml.YAMLError` on a duplicated mapping key."""
    return yaml.load(text, Loader=_StrictSafeLoader)  # noqa: S506 - a SafeLoader subclass


def _read_yaml_mapping(path: Path) -> dict[str, Any]:
    if not path.is_file():
        raise UserInputError(f"{path}: config file not found; check the path (base_config paths are relative to the including file)")
    raw = path.read_bytes()
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as error:
        line = raw[: error.start].count(b"\n") + 1
        raise UserInputError(
            f"{path} line {line}: not UTF-8 text (byte {error.start}: {raw[error.start:error.start + 2]!r}); save the config file as UTF-8"
        ) from None
    try:
        data = safe_load_strict(text)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f" line {mark.line + 1}, column {mark.column + 1}" if mark else ""
        raise UserInputError(f"{path}{where}: invalid YAML ({getattr(error, 'problem', error)}); fix the syntax there") from None
    if data is None:
        return {}
    if not isinstance(data, dict):
        raise UserInputError(f"{path}: the top level must be a mapping of keys to values, got {type(data).__name__}")
    return data


def deep_merge(base: dict[str, Any], override: dict[str, Any]) -> dict[str, Any]:
    """A new dict: `override` merged into `base`; nested dicts merge, everything else is replaced."""
    merged = dict(base)
    for key, value in override.items():
        if isinstance(value, dict) and isinstance(merged.get(key), dict):
            merged[key] = deep_merge(merged[key], value)
        else:
            merged[key] = value
    return merged


def _load_with_bases(path: Path, chain: tuple[Path, ...]) -> dict[str, Any]:
    path = path.resolve()
    if path in chain:
        cycle = " -> ".join(str(p) for p in (*chain, path))
        raise UserInputError(f"{path}: base_config cycle ({cycle}); remove one of the references")
    data = _read_yaml_mapping(path)
    bases = data.pop(BASE_KEY, None)
    if bases is None:
        return data
    if isinstance(bases, str):
        bases = [bases]
    if not isinstance(bases, list) or not all(isinstance(b, str) for b in bases):
        raise UserInputError(f"{path}: base_config must be a path or a list of paths, got {bases!r}")
    merged: dict[str, Any] = {}
    for base in bases:
        merged = deep_merge(merged, _load_with_bases(path.parent / base, (*chain, path)))
    return deep_merge(merged, data)


def _flat_keys(cfg: dict[str, Any], prefix: str = "") -> list[str]:
    keys = []
    for key, value in cfg.items():
        dotted = f"{prefix}{key}"
        keys.append(dotted)
        if isinstance(value, dict):
            keys.extend(_flat_keys(value, f"{dotted}."))
    return keys


def closest_key(key: str, candidates: list[str]) -> str | None:
    """The candidate most like `key` (for "did you mean" messages), or None when nothing is close."""
    matches = difflib.get_close_matches(key, candidates, n=1, cutoff=0.5)
    if matches:
        return matches[0]
    # A nested key whose last part is right but whose section is wrong ("lr" vs "optim.lr").
    leaf = key.rsplit(".", 1)[-1]
    same_leaf = [c for c in candidates if c.rsplit(".", 1)[-1] == leaf]
    return same_leaf[0] if same_leaf else None


def _split_top_level(text: str) -> list[str]:
    """Split on commas that are outside brackets and quotes ("c=[1,2],d=x" -> two parts)."""
    parts, depth, quote, current = [], 0, "", []
    for char in text:
        if quote:
            if char == quote:
                quote = ""
        elif char in "\"'":
            quote = char
        elif char in "[{(":
            depth += 1
        elif char in "]})":
            depth -= 1
        elif char == "," and depth == 0:
            parts.append("".join(current))
            current = []
            continue
        current.append(char)
    parts.append("".join(current))
    return [p.strip() for p in parts if p.strip()]


def parse_overrides(text: str | None) -> dict[str, Any]:
    """`"a.b=3,c=[1,2],d=text"` -> `{"a.b": 3, "c": [1, 2], "d": "text"}` (values parsed as YAML)."""
    overrides: dict[str, Any] = {}
    for part in _split_top_level(text or ""):
        key, sep, raw = part.partition("=")
        key = key.strip()
        if not sep or not key:
            raise UserInputError(f"--hparams: '{part}' is not of the form key=value (e.g. --hparams \"optim.lr=1e-4,max_updates=100\")")
        try:
            overrides[key] = yaml.safe_load(raw) if raw.strip() else ""
        except yaml.YAMLError:
            raise UserInputError(f"--hparams: the value of '{key}' ({raw!r}) is not a YAML value; quote strings that contain brackets or colons") from None
    return overrides


def _type_compatible(old: Any, new: Any) -> bool:
    if old is None or new is None:
        return True
    if isinstance(old, bool) or isinstance(new, bool):
        return isinstance(old, bool) and isinstance(new, bool)
    if isinstance(old, (int, float)) and isinstance(new, (int, float)):
        return not (isinstance(old, int) and isinstance(new, float) and not new.is_integer())
    return isinstance(new, type(old))


def apply_overrides(cfg: dict[str, Any], overrides: dict[str, Any], source: str = "--hparams") -> dict[str, Any]:
    """A new config with each dotted override applied; unknown keys and type changes are errors."""
    result = deep_merge(cfg, {})
    known = _flat_keys(cfg)
    for dotted, value in overrides.items():
        node = result
        parts = dotted.split(".")
        for depth, part in enumerate(parts):
            if not isinstance(node, dict) or part not in node:
                hint = closest_key(dotted, known)
                fix = f"did you mean '{hint}'?" if hint else "check the key names in the config file"
                raise UserInputError(f"{source}: unknown config key '{dotted}'; {fix}")
            if depth == len(parts) - 1:
                if not _type_compatible(node[part], value):
                    raise UserInputError(
                        f"{source}: '{dotted}' must be a {type(node[part]).__name__} like {node[part]!r}, got {value!r}"
                    )
                if isinstance(value, int) and not isinstance(value, bool) and isinstance(node[part], float):
                    value = float(value)
                node[part] = value
            else:
                node = node[part]
    return result


def check_sections(cfg: dict[str, Any], known: "typing.Iterable[str]", source: str) -> None:
    """A top-level section that nothing reads is an error naming the closest known one (a typo such as
    ``trainr:`` would otherwise train with the defaults and save the typo)."""
    known = list(known)
    for key in cfg:
        if key not in known:
            hint = closest_key(str(key), known)
            fix = f"did you mean '{hint}'?" if hint else f"known sections: {', '.join(sorted(known))}"
            raise UserInputError(f"{source}: unknown config section '{key}'; {fix}")


def load_config(path: str | os.PathLike, overrides: str | dict[str, Any] | None = None) -> dict[str, Any]:
    """Load `path` with its bases merged, then apply `overrides` (a `--hparams` string or a dict)."""
    cfg = _load_with_bases(Path(path), ())
    if overrides:
        parsed = parse_overrides(overrides) if isinstance(overrides, str) else overrides
        cfg = apply_overrides(cfg, parsed)
    return cfg


def save_config(cfg: dict[str, Any], path: str | os.PathLike) -> None:
    """Write the resolved config as YAML, atomically (temporary file, fsync, rename)."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    umask = os.umask(0)
    os.umask(umask)
    os.chmod(tmp, 0o666 & ~umask)  # mkstemp's 0o600 would hide the config from the rest of a team
    try:
        with os.fdopen(fd, "w", encoding="utf-8") as handle:
            yaml.safe_dump(cfg, handle, sort_keys=False, allow_unicode=True)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(tmp, path)
    except BaseException:
        if os.path.exists(tmp):
            os.unlink(tmp)
        raise


T = TypeVar("T")


def _coerce(value: Any, annotation: Any, where: str) -> Any:
    """Check a YAML value against a dataclass field's annotation (int accepted for float; lists to tuples)."""
    origin = typing.get_origin(annotation)
    args = typing.get_args(annotation)
    if annotation is Any:
        return value
    if origin is typing.Union or (origin is not None and str(origin) == "<class 'types.UnionType'>"):
        if value is None and type(None) in args:
            return None
        errors = []
        for option in args:
            if option is type(None):
                continue
            try:
                return _coerce(value, option, where)
            except UserInputError as error:
                errors.append(str(error))
        raise UserInputError(errors[0] if errors else f"{where}: unexpected value {value!r}")
    if origin in (tuple, list):
        if not isinstance(value, (list, tuple)):
            raise UserInputError(f"{where}: expected a list, got {value!r}")
        if origin is tuple and len(args) == 2 and args[1] is Ellipsis:
            items = [_coerce(v, args[0], f"{where}[{i}]") for i, v in enumerate(value)]
        elif origin is tuple and args:
            if len(args) != len(value):
                raise UserInputError(f"{where}: expected {len(args)} values, got {len(value)} ({value!r})")
            items = [_coerce(v, a, f"{where}[{i}]") for i, (v, a) in enumerate(zip(value, args))]
        else:
            inner = args[0] if args else Any
            items = [_coerce(v, inner, f"{where}[{i}]") for i, v in enumerate(value)]
        return tuple(items) if origin is tuple else items
    if origin is dict:
        if not isinstance(value, dict):
            raise UserInputError(f"{where}: expected a mapping, got {value!r}")
        return dict(value)
    if dataclasses.is_dataclass(annotation):
        return build_dataclass(annotation, value, where)
    if annotation is float:
        if isinstance(value, bool) or not isinstance(value, (int, float)):
            raise UserInputError(f"{where}: expected a number, got {value!r}")
        return float(value)
    if annotation is int:
        if isinstance(value, bool) or not isinstance(value, int):
            raise UserInputError(f"{where}: expected an integer, got {value!r}")
        return value
    if annotation is bool:
        if not isinstance(value, bool):
            raise UserInputError(f"{where}: expected true or false, got {value!r}")
        return value
    if annotation is str:
        if not isinstance(value, str):
            raise UserInputError(f"{where}: expected a string, got {value!r}")
        return value
    return value


def build_dataclass(cls: type[T], section: Any, where: str) -> T:
    """Build dataclass `cls` from a mapping; unknown or missing keys are errors naming `where.key`."""
    if not isinstance(section, dict):
        raise UserInputError(f"config: '{where}' must be a mapping, got {section!r}")
    fields = {f.name: f for f in dataclasses.fields(cls)}
    hints = typing.get_type_hints(cls)
    unknown = [k for k in section if k not in fields]
    if unknown:
        hint = closest_key(unknown[0], list(fields))
        fix = f"did you mean '{where}.{hint}'?" if hint else f"valid keys: {', '.join(fields)}"
        raise UserInputError(f"config: unknown key '{where}.{unknown[0]}'; {fix}")
    kwargs = {}
    for name, field in fields.items():
        if name in section:
            kwargs[name] = _coerce(section[name], hints[name], f"{where}.{name}")
        elif field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING:
            raise UserInputError(f"config: missing required key '{where}.{name}'; add it to the YAML")
    try:
        return cls(**kwargs)
    except ValueError as error:
        raise UserInputError(f"config: '{where}': {error}") from None


def config_section(cfg: dict[str, Any], cls: type[T], key: str) -> T:
    """`build_dataclass` on `cfg[key]` (dotted keys allowed), naming the key if it is absent."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserInputError(f"config: missing required section '{key}'; add it to the YAML")
        node = node[part]
    return build_dataclass(cls, node, key)


def require_key(cfg: dict[str, Any], key: str) -> Any:
    """The value at dotted `key`, or a `UserInputError` naming it."""
    node: Any = cfg
    for part in key.split("."):
        if not isinstance(node, dict) or part not in node:
            raise UserInputError(f"config: missing required key '{key}'; add it to the YAML")
        node = node[part]
    return node
