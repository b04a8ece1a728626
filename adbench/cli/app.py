"""The `adbench` command's Typer application, its consoles and the options several commands share."""

from __future__ import annotations

import sys
from pathlib import Path
from typing import Annotated

import typer
from rich.console import Console

from adbench.run.options import run_option_annotation

app = typer.Typer(
    name="adbench",
    help="Train and compare reconstruction-based image anomaly detectors on MVTec AD-style data.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
    add_completion=False,
    # Plain help: typer's rich panels read "[default: 10]" as markup and drop it, and give every flag a
    # type ("--amp <bool>") as if it took a value.
    rich_markup_mode=None,
    context_settings={"max_content_width": 110},
)


def _print_version(given: bool) -> None:
    if given:
        from importlib import metadata

        out_console.print(f"adbench {metadata.version('adbench-harness')}")
        raise typer.Exit()


@app.callback()
def _options(
    version: Annotated[
        bool,
        typer.Option("--version", is_eager=True, callback=_print_version, help="Print the version and exit."),
    ] = False,
) -> None:
    """Train and compare reconstruction-based image anomaly detectors on MVTec AD-style data."""


data_app = typer.Typer(
    help="Datasets: what a folder holds; generate the built-in synthetic data.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(data_app, name="data")

weights_app = typer.Typer(
    help="Pretrained weight files that methods build on: list, download or import and check them.",
    no_args_is_help=True,
    rich_markup_mode=None,
)
app.add_typer(weights_app, name="weights")

# Piped output gets a wide console: a 15-category table squeezed into 80 columns is unreadable.
# Names, paths and messages print as written: no markup ("pin[v2]"), no emoji codes ("cuda:x").
out_console = Console(markup=False, emoji=False, width=None if sys.stdout.isatty() else 250)
# In a log file a line is never wrapped: the progress and cell lines are read and grepped there.
err_console = Console(stderr=True, emoji=False, soft_wrap=not sys.stderr.isatty())

# Options shared by `run` and `time`. Their defaults are None so that a grid file's value is overridden
# only by a flag actually given; the defaults named in the help live in RunConfig.
CategoriesOption = run_option_annotation("categories")
KindsOption = run_option_annotation("kinds")
FormatOption = run_option_annotation("format")
ContendedOption = Annotated[
    bool,
    typer.Option(
        "--contended-timings",
        help="Count timings taken on a contended machine in the iterative/single-pass ratios.",
    ),
]
ConfigOption = Annotated[
    Path | None,
    typer.Option(
        "--config",
        metavar="FILE",
        help="Grid file (TOML) or an earlier run's manifest.json; flags given here override it.",
    ),
]
