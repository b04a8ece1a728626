"""`adbench weights fetch`: download a registry entry's file from its publisher and import it.

The file is downloaded into a staging folder beside the store (removed afterwards, or by the next fetch
when this process was killed) and handed to `store.import_file`, so a download is checked exactly as a
file imported by hand.
"""

from __future__ import annotations

import http.client
import urllib.error
import urllib.request
from pathlib import Path

from rich.console import Console
from rich.progress import (
    BarColumn,
    DownloadColumn,
    Progress,
    TextColumn,
    TimeRemainingColumn,
    TransferSpeedColumn,
)

from adbench.atomic import held_staging_folder
from adbench.errors import AdbenchError
from adbench.weights.registry import WeightFile, lookup
from adbench.weights.store import how_to_store, import_file, present, stored_path

_CHUNK = 1 << 20
# Seconds a connection may stay silent (connecting, or between two chunks) before the download fails.
_TIMEOUT_S = 60


def fetch(name: str, console: Console, force: bool = False) -> Path:
    """Download weights `name` and store them (unless they are stored already and not `force`); the
    stored file's path. The progress bar and the outcome are printed on `console`."""
    entry = lookup(name)
    if not entry.downloadable:
        raise AdbenchError(f"weights {name!r} cannot be downloaded by adbench: {how_to_store(entry)}")
    if not force and (path := present(name)) is not None:
        console.print(
            f"weights {name!r} are already in {path}; `--force` downloads them again",
            markup=False,
            highlight=False,
        )
        return path
    with held_staging_folder(stored_path(name), "weights-download") as folder:
        download = folder / entry.file_name
        _download(entry, download, console)
        stored = import_file(name, download)
    console.print(
        f"weights {name!r} ({entry.file_name}) checked and stored in {stored}", markup=False, highlight=False
    )
    return stored


def _download(entry: WeightFile, destination: Path, console: Console) -> None:
    request = urllib.request.Request(entry.url, headers={"User-Agent": "adbench"})
    try:
        response = urllib.request.urlopen(request, timeout=_TIMEOUT_S)
    except (OSError, http.client.HTTPException) as error:
        raise _failed(entry, error) from None
    columns = (
        TextColumn("{task.description}"),
        BarColumn(),
        DownloadColumn(),
        TransferSpeedColumn(),
        TimeRemainingColumn(),
    )
    with response, open(destination, "wb") as stream, Progress(*columns, console=console) as progress:
        length = response.headers.get("Content-Length")
        total = int(length) if length and length.isdigit() else None
        task = progress.add_task(entry.file_name, total=total)
        received = 0
        while True:
            # Only the reads are the network's: a failed write (a full disk) is reported as itself.
            try:
                chunk = response.read(_CHUNK)
            except (OSError, http.client.HTTPException) as error:
                raise _failed(entry, error) from None
            if not chunk:
                break
            stream.write(chunk)
            received += len(chunk)
            progress.advance(task, len(chunk))
    # urllib ends a response cut short as if it were complete.
    if total is not None and received != total:
        raise _failed(entry, f"the connection closed after {received:,} of {total:,} bytes")


def _failed(entry: WeightFile, error: BaseException | str) -> AdbenchError:
    if isinstance(error, urllib.error.HTTPError):
        reason = f"HTTP {error.code} {error.reason}"
    elif isinstance(error, urllib.error.URLError):
        reason = str(error.reason)
    else:
        reason = str(error) or type(error).__name__
    return AdbenchError(
        f"{entry.url}: download failed ({reason}); try again, or download it yourself and run "
        f"`adbench weights import {entry.name} FILE`"
    )
