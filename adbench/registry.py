"""Finding detectors: only through the `adbench.methods` entry-point group, ours included.

Listing names reads package metadata only; a method's module (and torch) is imported when the method
is loaded, so a broken third-party plugin affects only runs that ask for it.
"""

from __future__ import annotations

from importlib.metadata import EntryPoint, entry_points

from adbench.detector import Detector
from adbench.errors import AdbenchError, unknown_name_message
from adbench.names import checked_name

ENTRY_POINT_GROUP = "adbench.methods"


def _entry_points() -> dict[str, EntryPoint]:
    found: dict[str, EntryPoint] = {}
    for entry in entry_points(group=ENTRY_POINT_GROUP):
        found.setdefault(entry.name, entry)
    return dict(sorted(found.items()))


def method_names() -> list[str]:
    return list(_entry_points())


def load_method(name: str) -> type[Detector]:
    """The Detector class registered as `name`; AdbenchError with near matches when there is none."""
    available = _entry_points()
    if name not in available:
        if not available:
            raise AdbenchError(
                f"no methods registered in entry-point group {ENTRY_POINT_GROUP!r}; reinstall adbench-harness"
            )
        raise AdbenchError(unknown_name_message("method", name, list(available)))
    entry = available[name]
    checked_name(name, "method", f"entry point {entry.value} in group {ENTRY_POINT_GROUP}")  # cells/<method>/
    try:
        loaded = entry.load()
    except Exception as error:  # a plugin's import error is the plugin's problem, reported in one line
        raise AdbenchError(f"method {name!r} ({entry.value}) failed to import: {error!r}") from None
    if not (isinstance(loaded, type) and issubclass(loaded, Detector)):
        raise AdbenchError(f"method {name!r} ({entry.value}) is not an adbench.detector.Detector subclass")
    if getattr(loaded, "name", None) != name:
        raise AdbenchError(f"method {name!r} ({entry.value}) declares name {getattr(loaded, 'name', None)!r}")
    return loaded
