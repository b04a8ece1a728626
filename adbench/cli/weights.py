"""`adbench weights`: the pretrained weight files methods build on; list, fetch and import them."""

from __future__ import annotations

from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from adbench.cli.app import err_console, out_console, weights_app

NameArgument = Annotated[
    str, typer.Argument(metavar="NAME", help="The weights' name (see `adbench weights list`).")
]


@weights_app.command("list")
def list_weights() -> None:
    """The known weight files: which methods use them, whether they are stored (and where), their
    publisher's address and what is checked when they are imported and loaded."""
    from adbench.weights import registry
    from adbench.weights.store import present

    table = Table("weights", "used by", "stored", "source", "check")
    for entry in registry.WEIGHTS.values():
        path = present(entry.name)
        checks = [f"sha256 {entry.sha256[:8]}…"] if entry.sha256 else []
        if entry.expected is not None:
            checks.append("tensor names and shapes")
        table.add_row(
            entry.name,
            ", ".join(entry.used_by),
            Text("no", style="yellow") if path is None else str(path),
            entry.url if entry.downloadable else f"{entry.url} (by hand)",
            ", ".join(checks) or "none",
        )
    out_console.print(table)


@weights_app.command("fetch")
def fetch_weights(
    name: NameArgument,
    force: Annotated[bool, typer.Option("--force", help="Download again even when they are stored.")] = False,
) -> None:
    """Download weights from their publisher, check them and store them."""
    from adbench.weights.download import fetch

    # On stderr, where the download's progress bar is drawn, as `adbench run` draws its own.
    fetch(name, err_console, force=force)


@weights_app.command("import")
def import_weights(
    name: NameArgument,
    file: Annotated[Path, typer.Argument(metavar="FILE", help="The publisher's file, downloaded by hand.")],
) -> None:
    """Check a downloaded weights file (checksum, tensor names and shapes) and store it."""
    from adbench.weights.registry import lookup
    from adbench.weights.store import import_file

    stored = import_file(name, file)
    out_console.print(f"weights {name!r} ({lookup(name).file_name}) checked and stored in {stored}")
