"""Import a class named by a dotted path in the config (`task_cls`, `optimizer_cls`, `scheduler_cls`)."""
from __future__ import annotations

import difflib
import importlib
from typing import Any

from config.errors import UserInputError


def import_class(path: Any, where: str, example: str) -> type:
    """The class at `path` ("package.module.Class"); a `UserInputError` naming `where` when it cannot be found.

    A module that exists but fails while importing one of *its* dependencies is a bug, not a
    config mistake, so that error propagates with its traceback.
    """
    if not isinstance(path, str) or "." not in path.strip(".") or " " in path:
        raise UserInputError(f"{where}: {path!r} is not an import path; give it as module.Class, e.g. {example}")
    module_name, _, attr = path.rpartition(".")
    try:
        module = importlib.import_module(module_name)
    except ModuleNotFoundError as error:
        requested = module_name.split(".")
        missing = (error.name or "").split(".")
        if missing != requested[: len(missing)]:
            raise  # the module exists; something it imports is missing
        raise UserInputError(
            f"{where}: cannot import {path!r} (no module named {error.name!r}); give it as module.Class, e.g. {example}"
        ) from None
    found = getattr(module, attr, None)
    if not isinstance(found, type):
        names = [n for n in dir(module) if isinstance(getattr(module, n, None), type)]
        same_but_case = [n for n in names if n.lower() == attr.lower()]
        close = same_but_case or difflib.get_close_matches(attr, names, n=1, cutoff=0.6)
        fix = f"did you mean {module_name}.{close[0]}?" if close else f"give it as module.Class, e.g. {example}"
        raise UserInputError(f"{where}: module {module_name!r} has no class {attr!r}; {fix}")
    return found


def class_path(obj_or_cls: Any) -> str:
    """"module.QualName" of a class or of an object's class (stored in checkpoints to describe them)."""
    cls = obj_or_cls if isinstance(obj_or_cls, type) else type(obj_or_cls)
    return f"{cls.__module__}.{cls.__qualname__}"
