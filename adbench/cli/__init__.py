"""The `adbench` command: parse, build a RunConfig, call, render.

User-fixable problems (AdbenchError) end as one red line on stderr and exit code 2; Ctrl-C during a run
as one line and exit code 130. Nothing else is caught here, so real bugs keep their tracebacks. Each
command lives in a module of this package; importing them registers them on the application.
"""

from __future__ import annotations

import sys
from typing import Any

import typer
from rich.markup import escape

from adbench.atomic import user_error
from adbench.cli.app import app, err_console
from adbench.errors import AdbenchError
from adbench.files import encodes_as_utf8
from adbench.machine.sharing import choose_wait_policy

# Importing a command's module registers it; `adbench --help` lists the commands in this order.
# isort: off
from adbench.cli import run, results, info, weights  # noqa: F401
# isort: on


def _refuse_undecodable(args: list[str]) -> None:
    """AdbenchError for the first argument whose bytes are not UTF-8 (Python holds them as surrogate
    escapes, which no UTF-8 terminal, manifest, report or parquet file can take), its bytes shown."""
    for index, arg in enumerate(args):
        if not encodes_as_utf8(arg):
            option = f"{args[index - 1]} " if index and args[index - 1].startswith("-") else ""
            shown = arg.encode("utf-8", "surrogateescape").decode("utf-8", "backslashreplace")
            raise AdbenchError(
                f"{option}{shown}: not valid UTF-8; adbench records the paths and names it is given in "
                "UTF-8 files (manifests, reports), so rename it to UTF-8 (e.g. with convmv)"
            )


# typer from 0.2x on carries its own copy of click; either way its usage errors derive from the classes
# below, found through the one typer exports.
_USAGE_ERROR: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "UsageError")
_CLICK_EXCEPTION: Any = next(c for c in typer.BadParameter.__mro__ if c.__name__ == "ClickException")


# Commands that train or score with torch: they choose OpenMP's wait policy before torch is imported.
_COMPUTING_COMMANDS = ("run", "time", "evaluate")


def main() -> None:
    try:
        _refuse_undecodable(sys.argv[1:])
        if sys.argv[1:2] and sys.argv[1] in _COMPUTING_COMMANDS and (note := choose_wait_policy()):
            err_console.print(f"note: {escape(note)}", highlight=False, soft_wrap=True)
        # Not standalone, so that a usage error is ours to print (in one line, as every other error);
        # what typer's standalone mode returns instead of exiting: an exit code, or a command's None.
        code = app(prog_name="adbench", standalone_mode=False)
        sys.exit(code if isinstance(code, int) else 0)
    except _CLICK_EXCEPTION as error:
        if type(error).__name__ == "NoArgsIsHelpError":  # a group called alone: its help is the answer
            error.show()
            sys.exit(error.exit_code)
        message = " ".join(error.format_message().split()).rstrip(".")
        if isinstance(error, _USAGE_ERROR) and error.ctx is not None:
            message += f"; see {error.ctx.command_path} --help"
        err_console.print(f"[red]error:[/] {escape(message)}", highlight=False, soft_wrap=True)
        sys.exit(error.exit_code)
    except typer.Abort:
        err_console.print("Aborted!", highlight=False)
        sys.exit(1)
    except AdbenchError as error:
        err_console.print(f"[red]error:[/] {escape(str(error))}", highlight=False, soft_wrap=True)
        sys.exit(2)
    except OSError as error:
        # A full disk or a folder this user may not write is the user's to fix wherever it happened.
        explained = user_error(error)
        if explained is None:
            raise
        err_console.print(f"[red]error:[/] {escape(str(explained))}", highlight=False, soft_wrap=True)
        sys.exit(2)
