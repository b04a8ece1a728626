"""Atomic file writes: a reader sees the old file or the new one, never a partial one.

Each write goes to a temporary file in the target's folder, is fsynced, then renamed over the target.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import shutil
import tempfile
from collections.abc import Callable, Iterator, Sequence
from pathlib import Path
from typing import Any

from adbench.errors import AdbenchError
from adbench.run.lock import try_lock

# In a held staging folder: locked by the process that builds in it for as long as it lives.
STAGING_LOCK = ".staging.lock"
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
    keep their traceback). The command line uses it for any OSError that reaches it. Every command
    may fail this way, so it names none of their options: a run that can be resumed says so itself."""
    fix = _FIXES.get(error.errno or 0)
    return None if fix is None else f"{fix}, then run the command again"


def user_error(error: OSError) -> AdbenchError | None:
    """`error` as the one line the user gets when it is theirs to fix (`user_fix`); None for a bug."""
    fix = user_fix(error)
    return None if fix is None else AdbenchError(f"{error.filename or 'a file'}: {error.strerror}; {fix}")


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


def staging_folder(beside: Path, prefix: str | None = None) -> Path:
    """A new hidden folder next to `beside` (named `prefix`..., by default `.<its name>-`...), to build it
    (or files for its folder) before moving them into place; a folder the user may not write is one line
    naming it."""
    make_folder(beside.parent)
    try:
        return Path(tempfile.mkdtemp(dir=beside.parent, prefix=prefix or f".{beside.name}-"))
    except OSError as error:
        fix = user_fix(error)
        if fix is None:
            raise
        raise AdbenchError(f"{beside.parent}: {_reason(error)}; {fix}") from None


def _reason(error: OSError) -> str:
    """The error's reason in words, as the system says it ("no space left on device")."""
    return (os.strerror(error.errno) if error.errno is not None else str(error)).lower()


@contextlib.contextmanager
def held_staging_folder(beside: Path, kind: str) -> Iterator[Path]:
    """A staging folder for `beside`, `.adbench-<kind>-...` in its folder, locked by this process while
    the block runs and removed after it. The folders of the same kind there that no live process holds
    (left by a killed one) are removed first; links and other folders never are."""
    prefix = f".adbench-{kind}-"
    _remove_abandoned(beside.parent, prefix)
    folder = staging_folder(beside, prefix)
    try:
        descriptor = os.open(folder / STAGING_LOCK, os.O_RDWR | os.O_CREAT | os.O_EXCL, 0o600)
        try:
            # A file just made, so no other process holds it. On a filesystem without locks neither
            # this nor `_abandoned` takes one: nothing is removed there, in use or not.
            with contextlib.suppress(OSError):
                try_lock(descriptor)
            yield folder
        finally:
            os.close(descriptor)  # the operating system releases the lock however this process ends
    finally:
        shutil.rmtree(folder, ignore_errors=True)


def _remove_abandoned(folder: Path, prefix: str) -> None:
    """Remove the folders named `prefix`... in `folder` whose lock no process holds any more."""
    try:
        with os.scandir(folder) as listing:
            candidates = [Path(entry.path) for entry in listing if entry.name.startswith(prefix)]
    except OSError:
        return  # a folder that cannot be listed is reported by whatever writes into it
    for candidate in candidates:
        if candidate.is_dir() and not candidate.is_symlink() and _abandoned(candidate):
            shutil.rmtree(candidate, ignore_errors=True)


def _abandoned(folder: Path) -> bool:
    """Whether `folder`'s lock file is there and unheld; without one (a folder in its first instant, or
    not a staging folder) it is left alone."""
    try:
        descriptor = os.open(folder / STAGING_LOCK, os.O_RDWR | getattr(os, "O_NOFOLLOW", 0))
    except OSError:
        return False
    try:
        return try_lock(descriptor)
    except OSError:  # a filesystem without locks
        return False
    finally:
        os.close(descriptor)


def write_atomic(path: Path, write: Callable[[Path], object]) -> None:
    """Call `write(tmp)` to fill a temporary file, then move it to `path`."""
    write_atomic_together([(path, write)])


def write_atomic_together(writes: Sequence[tuple[Path, Callable[[Path], object]]]) -> None:
    """Fill a temporary file for every target first, then move them all into place.

    Files that must agree (results.parquet and results.csv) are written this way so that a failure
    while writing any of them, a full disk most likely, replaces none of them.
    """
    temps: list[Path] = []
    target = writes[0][0] if writes else Path()
    existed = {path for path, _ in writes if os.path.lexists(path)}
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
        raise _not_written(target, error, kept=target in existed) from None
    finally:
        for tmp in temps:
            tmp.unlink(missing_ok=True)


def _not_written(path: Path, error: OSError, kept: bool) -> Exception:
    """The one line for a file not written because of `error`; `error` itself when it is a bug."""
    fix = user_fix(error)
    if fix is None:
        return error
    previous = " (the previous version is kept)" if kept else ""
    return AdbenchError(f"{path}: not written, {_reason(error)}{previous}; {fix}")


def check_writable(path: Path) -> None:
    """AdbenchError, as `write_atomic` would give it, when `path`'s folder cannot take a new file: for
    commands that compute for a while before they write, so that they fail before, not after."""
    make_folder(path.parent)
    try:
        handle, probe = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.", suffix=".tmp")
    except OSError as error:
        raise _not_written(path, error, kept=False) from None
    os.close(handle)
    os.unlink(probe)


def write_text_atomic(path: Path, text: str) -> None:
    write_atomic(path, lambda tmp: tmp.write_text(text))


def write_json_atomic(path: Path, payload: Any) -> None:
    write_text_atomic(path, json.dumps(payload, indent=2, default=str) + "\n")
