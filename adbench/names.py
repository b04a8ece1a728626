"""Names that become parts of paths, and the check that a path stays inside its folder.

Category names come from folder names, categories.toml and split files; defect types and image names
from folders; method names from installed packages; run names from the command line; and all of them
come back from manifests on --resume. Each becomes one component of a path the harness writes or deletes
(`cells/<method>/<category>/seed<k>`, cache entries, `maps/<category>/test/<defect>/<image>.tiff`), so
each is checked where it is read: one plain component, printable, valid UTF-8, of bounded length.
`inside` is the last line of defence, applied where cell folders and cache entries are made: a path that
resolves (links followed) outside its root is refused whatever name produced it.
"""

from __future__ import annotations

import unicodedata
from collections.abc import Iterable
from pathlib import Path

from adbench.errors import AdbenchError

MAX_NAME_BYTES = 255  # a file name's limit on every common filesystem


def name_problem(name: str) -> str | None:
    """Why `name` cannot be one component of a path, or None when it can."""
    if not name:
        return "it is empty"
    if name in (".", ".."):
        return "'.' and '..' name folders that exist already"
    if "/" in name or "\\" in name:
        return "it holds a path separator"
    if "\0" in name:
        return "it holds a NUL byte"
    if not name.isprintable():  # lone surrogates too (bytes that were not UTF-8): UTF-8 encodes the rest
        return "it holds an unprintable character"
    encoded = name.encode("utf-8")
    if len(encoded) > MAX_NAME_BYTES:
        return f"it is {len(encoded)} bytes long, more than a file name holds ({MAX_NAME_BYTES})"
    return None


def checked_name(name: str, what: str, source: Path | str) -> str:
    """`name`, or AdbenchError naming `source` (the file or option it was read from) when it cannot be a
    folder or file name."""
    problem = name_problem(name)
    if problem is not None:
        shown = ascii(name) if len(name) <= 60 else f"{name[:60]!a}..."
        raise AdbenchError(f"{source}: {what} {shown} cannot be a file or folder name ({problem}); rename it")
    return name


def same_folder_key(name: str) -> str:
    """Two names with one key land in one folder on some filesystem (case-insensitive, or normalising
    Unicode as macOS does)."""
    return unicodedata.normalize("NFC", name).casefold()


def refuse_same_folder(names: Iterable[str], what: str, source: Path | str) -> None:
    """AdbenchError when two of `names` would share a folder, where one would wipe the other's files."""
    seen: dict[str, str] = {}
    for name in names:
        other = seen.setdefault(same_folder_key(name), name)
        if other != name:
            raise AdbenchError(
                f"{source}: the {what} {other!a} and {name!a} would share one folder on a "
                "case-insensitive filesystem; rename one of them"
            )


def inside(root: Path, path: Path) -> Path:
    """`path`, refused unless it resolves (links followed) to a place below `root`, not `root` itself: the
    last check before the harness writes or deletes there."""
    resolved_root = root.resolve()
    resolved = path.resolve()
    if resolved == resolved_root or not resolved.is_relative_to(resolved_root):
        raise AdbenchError(
            f"{path}: resolves to {resolved}, outside {resolved_root}; adbench writes and deletes only "
            "inside its own folders (a name from a data file or a link led there)"
        )
    return path
