"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Each write goes to a temporary file in the target's folder, is fsynced, then renamed over the target.
"""

from __future__ import annotations

import errno
import json
import os
import tempfile
from collections.abc import Callable, Sequence
from pathlib import Path
from typing import Any

from adbench.errors import AdbenchError

# A full disk, a quota or a folder the user may not write is theirs to fix: one line, not a traceback.
_FIXES = {
    errno.ENOSPC: "free some space",
    errno.EDQUOT: "free some space",
    errno.EACCES: "choose a place you may read and write, or fix its permissions",
    errno.EPERM: "choose a place you may read and write, or fix its permissions",
    errno.EROFS: "choose a place on a writable disk",
    errno.ENAMETOOLONG: "choose a shorter name or path",
}


def user_fix(error: OSError) -> str | None:
    """What the user can do about `error` when it is theirs to fix; None for the rest (bugs, which
    keep their traceback). The command line uses it for any OSError that reaches it."""
    fix = _FIXES.get(error.errno or 0)
    return (
        None
        if fix is None
        else f"{fix}, then run the command again (`adbench run --resume RUN` finishes a run)"
    )


def _umask() -> int:
    current = os.umask(0)
    os.umask(current)
    return current


def make_folder(folder: Path) -> None:
    """`mkdir -p folder`, with the usual mistakes (a file in the way, no permission) as one line."""
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except (FileExistsError, NotADirectoryError):
        raise AdbenchError(
            f"{folder}: not a folder (it, or one above it, is a file); choose another path"
        ) from None
    except PermissionError:
        raise AdbenchError(f"{folder}: permission denied; choose a folder you can write to") from None


def staging_folder(beside: Path) -> Path:
    """A new hidden folder next to `beside`, to build it (or files for its folder) before moving them
    into place; a folder the user may not write is one line naming it."""
    make_folder(beside.parent)
    try:
        return Path(tempfile.mkdtemp(dir=beside.parent, prefix=f".{beside.name}-"))
    except OSError as error:
        fix = user_fix(error)
        if fix is None:
            raise
        raise AdbenchError(f"{beside.parent}: {os.strerror(error.errno).lower()}; {fix}") from None


def write_atomic(path: Path, write: Callable[[Path], None]) -> None:
    """Call `write(tmp)` to fill a temporary file, then move it to `path`."""
    write_atomic_together([(path, write)])


def write_atomic_together(writes: Sequence[tuple[Path, Callable[[Path], None]]]) -> None:
    """Fill a temporary file for every target first, then move them all into place.

    Files that must agree (results.parquet and results.csv) are written this way so that a failure
    while writing any of them, a full disk most likely, replaces none of them.
    """
    temps: list[Path] = []
    target = writes[0][0] if writes else Path()
    try:
        for target, write in writes:
            make_folder(target.parent)
            handle, tmp_name = tempfile.mkstemp(dir=target.parent, prefix=f".{target.name}.", suffix=".tmp")
            os.close(handle)
            tmp = Path(tmp_name)
            temps.append(tmp)
            write(tmp)
            with open(tmp, "rb+") as stream:
                os.fsync(stream.fileno())
            # mkstemp makes the file private (0600); give it the mode a plain open() would have.
            os.chmod(tmp, 0o666 & ~_umask())
        for (target, _), tmp in zip(writes, temps, strict=True):
            os.replace(tmp, target)
    except OSError as error:
        fix = user_fix(error)
        if fix is None:
            raise
        raise AdbenchError(
            f"{target}: not written, {os.strerror(error.errno).lower()} (the previous version is kept); {fix}"
        ) from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
