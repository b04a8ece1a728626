"""One process per run folder: an exclusive lock held for the whole run.

Two processes resuming one run would both redo every unfinished cell and race on the same files. The
lock is taken on `<run>/.lock` with `fcntl.flock` (POSIX) or `msvcrt.locking` (Windows). The operating
system releases either when its holder exits, however it exits, so a file left by a killed run is
simply taken over by the next process; a run that ends removes it. The file holds the holder's pid and
host, for the message that refuses a second process.
"""

from __future__ import annotations

import contextlib
import errno
import json
import os
import socket
import sys
from collections.abc import Iterator
from pathlib import Path

from adbench.errors import AdbenchError
from adbench.files import parse_json

LOCK_FILE = ".lock"
# The holder's pid and host are written after this byte, so that the lock (on byte 0, the Windows way)
# never covers what a refused process reads to name the holder.
_HOLDER_OFFSET = 1


def try_lock(descriptor: int) -> bool:
    """Take the exclusive lock of an open file without waiting; False when another process holds it."""
    if sys.platform == "win32":
        import msvcrt

        os.lseek(descriptor, 0, os.SEEK_SET)
        try:
            msvcrt.locking(descriptor, msvcrt.LK_NBLCK, 1)
        except OSError:
            return False
        return True
    import fcntl

    try:
        fcntl.flock(descriptor, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except BlockingIOError:
        return False
    return True


def _holder(lock: Path) -> str:
    try:
        holder = parse_json(lock.read_bytes()[_HOLDER_OFFSET:].decode())
        return f"process {holder['pid']} on {holder['host']}"
    except (OSError, ValueError, KeyError, TypeError):  # UnicodeDecodeError is a ValueError
        return "another process"


@contextlib.contextmanager
def run_lock(run_dir: Path) -> Iterator[None]:
    """Hold the run folder's lock inside the block; AdbenchError naming the holder if another has it."""
    lock = run_dir / LOCK_FILE
    descriptor = _acquire(run_dir, lock)
    try:
        holder = json.dumps({"pid": os.getpid(), "host": socket.gethostname()})
        os.ftruncate(descriptor, _HOLDER_OFFSET)
        os.lseek(descriptor, _HOLDER_OFFSET, os.SEEK_SET)
        os.write(descriptor, holder.encode())
        yield
    finally:
        lock.unlink(missing_ok=True)  # while still held, so that no one locks a file about to go
        os.close(descriptor)


def _acquire(run_dir: Path, lock: Path) -> int:
    """An open descriptor of the locked file; retried when the file was removed by its previous holder
    between our open and our lock (we would hold a lock on a file no one else sees)."""
    for _ in range(10):
        try:
            # O_NOFOLLOW: a link planted as the lock file must not make this write someone else's file.
            descriptor = os.open(lock, os.O_RDWR | os.O_CREAT | getattr(os, "O_NOFOLLOW", 0), 0o644)
        except OSError as error:
            what = {errno.ELOOP: "a symbolic link", errno.EISDIR: "a folder"}.get(error.errno or 0)
            if what is None:
                raise
            raise AdbenchError(f"{lock}: {what}, not adbench's lock file; remove it") from None
        if not try_lock(descriptor):
            os.close(descriptor)
            raise AdbenchError(
                f"{run_dir}: in use by {_holder(lock)} (lock file {lock.name}); "
                "wait for that run to end, or stop it, then run the command again"
            )
        try:
            if os.stat(lock, follow_symlinks=False).st_ino == os.fstat(descriptor).st_ino:
                return descriptor
        except FileNotFoundError:
            pass
        os.close(descriptor)
    raise AdbenchError(f"{lock}: kept changing while adbench tried to lock it; run the command again")
