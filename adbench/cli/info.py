"""`adbench methods` and `adbench data`: what is registered, what a dataset folder holds."""

from __future__ import annotations

import os
import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.table import Table
from rich.text import Text

from adbench.cli.app import (
    CategoriesOption,
    FormatOption,
    KindsOption,
    app,
    data_app,
    err_console,
    out_console,
)
from adbench.errors import AdbenchError
from adbench.run.options import parse_kinds, split_names


@app.command("methods")
def list_methods() -> None:
    """List the registered methods, their inference kind and whose trained networks they score with."""
    from adbench.registry import load_method, method_names

    table = Table("method", "inference", "class")
    for method_name in method_names():
        try:
            method = load_method(method_name)
        except AdbenchError as error:  # one broken plugin must not hide the others
            table.add_row(method_name, Text("unavailable", style="red"), str(error))
            continue
        kind = method.inference_kind + (f", on {method.trained_by}'s networks" if method.trained_by else "")
        table.add_row(method_name, kind, f"{method.__module__}.{method.__qualname__}")
    out_console.print(table)


@data_app.command("info")
def data_info(
    root: Annotated[Path, typer.Argument(metavar="ROOT", help="The dataset's root folder.")],
    as_json: Annotated[
        bool, typer.Option("--json", help="One JSON object per category, one per line.")
    ] = False,
    data_format: FormatOption = None,
    categories: CategoriesOption = None,
    kinds: KindsOption = None,
) -> None:
    """The dataset's format and, per category, its kind, channels, image sizes and images per split;
    every file is checked as `adbench run` checks it."""
    import json

    from adbench.data.info import dataset_info

    with err_console.status("checking the dataset") as status:
        checked = 0

        def on_file() -> None:
            nonlocal checked
            checked += 1
            if checked % 100 == 0:
                status.update(f"checking the dataset: {checked:,} files")

        title, infos, total = dataset_info(
            root, split_names(categories), parse_kinds(kinds), data_format, on_file
        )
    if as_json:
        for info in infos:
            sys.stdout.write(json.dumps(info.to_json()) + "\n")
        return
    table = Table(
        "category", "kind", "channels", "image sizes", "train", "validation", "test normal",
        "test anomalous", "defect types", "unlabeled", title=f"{title} at {root} ({total:,} files checked)",
    )  # fmt: skip
    for info in infos:
        table.add_row(
            info.category,
            info.kind,
            str(info.channels),
            ", ".join(info.sizes),
            *(str(value) for value in (info.train, info.validation, info.test_normal, info.test_anomalous)),
            str(info.defect_types),
            str(info.unlabeled),
        )
    out_console.print(table)


@data_app.command("synth")
def data_synth(
    out: Annotated[Path, typer.Option(metavar="DIR", help="Folder to create (must not exist).")],
    seed: Annotated[
        int, typer.Option(metavar="SEED", help="Generator seed; the same seed gives byte-identical files.")
    ] = 0,
) -> None:
    """Write the synthetic dataset (MVTec AD layout) to a new folder."""
    from adbench.data.synth import generate

    if os.path.lexists(out):
        raise AdbenchError(f"{out}: already exists and is never overwritten; choose a new --out")
    generate(out, seed)
    out_console.print(f"synthetic dataset (seed {seed}) written to {out}")
