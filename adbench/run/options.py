"""Every option of a run, declared once: its flag, grid-file key, help, shown default, checks, how runs
made before it existed read it, and which commands and modes may set it.

The rest is derived from `RUN_OPTIONS`: the flags of `adbench run` and `adbench time` (`with_run_options`),
the grid file's keys and their type checks, the manifest's config section (`adbench.run.config`), what
`--eval-only`/`time --from` and `--resume` accept. The option's value and default live in its
`RunConfig` field (adbench/run/config.py), which the declaration names; a test holds the two together.

Adding an option: a `RunConfig` field with its default and check, one `RunOption` here, and its use.

This module imports neither torch nor the data code, so that `adbench --help` stays fast; its lists of
formats and budgets are written out (tests hold them to the data code's).
"""

from __future__ import annotations

import functools
import inspect
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Annotated, Any, Literal

import typer

from adbench.errors import AdbenchError

Command = Literal["run", "time"]
# How a grid-file value becomes a RunConfig value and back: as it is, a path (str <-> Path), a list
# (list <-> tuple), a table of kinds (dict <-> pairs), or per-method params (a table of tables).
Conversion = Literal["same", "path", "list", "kinds", "params"]
NOT_SET: Any = object()
# Scalar hyperparameter values a grid file may set (TOML/JSON scalars).
ParamValue = bool | int | float | str


@dataclass(frozen=True)
class RunOption:
    key: str  # the grid-file and manifest key
    field: str  # RunConfig's field
    flag: str  # "--name", or "--on/--off" for a switch
    metavar: str | None  # None for a switch
    help: str  # what it does; the default is added from `shown_default`
    shown_default: str | None  # "[default: ...]" text; None: no default shown
    flag_type: Any  # the value typer hands over for the flag (str, int, Path, bool, list[str])
    parse: Callable[[Any], Any]  # the flag's value as a grid-file value
    file_check: Callable[[Any], bool]  # whether a grid-file value has the right type
    expected: str  # what a valid grid-file value looks like, for the message
    conversion: Conversion = "same"
    # What runs made before the option existed read as; NOT_SET: its RunConfig default.
    before: Any = NOT_SET
    commands: tuple[Command, ...] = ("run", "time")
    # --eval-only / time --from may set it: it changes how a run scores, not its grid.
    rescoring: bool = False
    resuming: bool = False  # --resume may set it (it does not change what the run computes)


def split_names(value: str | None) -> tuple[str, ...] | None:
    """A comma-separated list of names, blanks dropped; None when not given."""
    if value is None:
        return None
    return tuple(part.strip() for part in value.split(",") if part.strip())


def _parse_seeds(value: str) -> list[int]:
    try:
        return [int(part) for part in split_names(value) or ()]
    except ValueError:
        raise AdbenchError(f"--seeds {value}: expected integers separated by commas, e.g. 0,1,2") from None


def parse_kinds(value: str | None) -> dict[str, str]:
    """--kinds CATEGORY=KIND,... as a table; a category given twice is refused."""
    pairs: dict[str, str] = {}
    for item in split_names(value) or ():
        name, sep, kind = item.partition("=")
        if not sep:
            raise AdbenchError(f"--kinds {item}: expected category=texture or category=object")
        if name in pairs:  # the last would win silently, and the first may be the one meant
            raise AdbenchError(f"--kinds {value}: {name} is given twice; give each category one kind")
        pairs[name] = kind
    return pairs


def _parse_sets(values: list[str]) -> dict[str, dict[str, object]] | None:
    """--set METHOD.PARAM=VALUE ... as a grid file's params table; VALUE is read as TOML (1e-4, 64, true,
    "text"), a bare word as text."""
    import tomllib

    from adbench.files import parse_toml

    if not values:
        return None
    params: dict[str, dict[str, object]] = {}
    for item in values:
        target, sep, raw = item.partition("=")
        method, dot, param = target.partition(".")
        if not sep or not dot or not method.strip() or not param.strip() or not raw.strip():
            raise AdbenchError(f"--set {item}: expected METHOD.PARAM=VALUE, e.g. --set cbigan.alpha=1e-4")
        try:
            value = parse_toml(f"value = {raw.strip()}")["value"]
        except tomllib.TOMLDecodeError:
            value = raw.strip()
        except ValueError as error:  # TOML that Python cannot hold (nesting, digits): no bare word either
            raise AdbenchError(f"--set {target.strip()}: its value is {error}") from None
        params.setdefault(method.strip(), {})[param.strip()] = value
    return params


def _is_str(value: Any) -> bool:
    return isinstance(value, str)


def _is_bool(value: Any) -> bool:
    return isinstance(value, bool)


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _is_list_of_str(value: Any) -> bool:
    return isinstance(value, list) and all(isinstance(item, str) for item in value)


def _is_table_of_kinds(value: Any) -> bool:
    return isinstance(value, dict) and all(item in ("texture", "object") for item in value.values())


def _is_params(value: Any) -> bool:
    return isinstance(value, dict) and all(
        isinstance(fields, dict) and all(isinstance(item, ParamValue) for item in fields.values())
        for fields in value.values()
    )


EXECUTORS = ("sequential", "dask")
# Where pixel metrics are computed: at the ground-truth masks' own size (maps upsampled to it, the MVTec
# AD evaluation's ground truth for every method alike) or at each detector's input size (masks resized
# to it; faster, but methods with different input sizes are then scored against different ground truth).
PIXEL_RESOLUTIONS = ("native", "input")
# adbench.data.formats.FORMAT_NAMES, written out: importing it here would import torch.
FORMAT_NAMES = ("mvtec_ad", "mpdd", "mvtec_ad2", "mvtec_loco", "visa", "btad")
_PATH, _NAMES = "a folder path", "a list of {} names, e.g. {}"

RUN_OPTIONS: tuple[RunOption, ...] = (
    RunOption(
        key="methods", field="methods", flag="--methods", metavar="NAMES",
        help="Comma-separated method names (see `adbench methods`).", shown_default=None,
        flag_type=str, parse=split_names, conversion="list",
        file_check=_is_list_of_str, expected=_NAMES.format("method", '["cbigan", "egbad"]'),
    ),
    RunOption(
        key="categories", field="categories", flag="--categories", metavar="NAMES",
        help="Comma-separated category names.", shown_default=None,
        flag_type=str, parse=split_names, conversion="list",
        file_check=_is_list_of_str, expected=_NAMES.format("category", '["sand", "pin"]'),
    ),
    RunOption(
        key="all_categories", field="categories", flag="--all-categories", metavar=None,
        help="Every category of the data.", shown_default=None,
        flag_type=bool, parse=bool, file_check=_is_bool, expected="true or false",
    ),
    RunOption(
        key="data", field="data", flag="--data", metavar="DIR",
        help="A dataset's root folder as its publisher distributes it (MVTec AD, MPDD, MVTec AD 2, MVTec "
        "LOCO, VisA, BTAD).",
        shown_default="the built-in synthetic dataset",
        flag_type=Path, parse=str, conversion="path", file_check=_is_str, expected=_PATH, rescoring=True,
    ),
    RunOption(
        key="format", field="data_format", flag="--format", metavar="NAME",
        help=f"The dataset's format: {', '.join(FORMAT_NAMES[:-1])} or {FORMAT_NAMES[-1]}.",
        shown_default="detected from the folder's contents",
        flag_type=str, parse=str, file_check=lambda value: value in FORMAT_NAMES,
        expected=f"one of {', '.join(FORMAT_NAMES)}",
    ),
    RunOption(
        key="seeds", field="seeds", flag="--seeds", metavar="SEEDS",
        help="Comma-separated training seeds.", shown_default="0",
        flag_type=str, parse=_parse_seeds, conversion="list",
        file_check=lambda value: isinstance(value, list) and all(map(_is_int, value)),
        expected="a list of integers",
    ),
    RunOption(
        key="budget", field="budget", flag="--budget", metavar="BUDGET",
        help="smoke (seconds), default (minutes on a CPU) or paper.", shown_default="default",
        flag_type=str, parse=str, file_check=_is_str, expected="one of smoke, default, paper",
    ),
    RunOption(
        key="out", field="out", flag="--out", metavar="DIR",
        help="Folder that receives the run folder.", shown_default="runs",
        flag_type=Path, parse=str, conversion="path", file_check=_is_str, expected=_PATH, rescoring=True,
    ),
    RunOption(
        key="name", field="run_name", flag="--name", metavar="NAME",
        help="Run folder name.", shown_default="the start time and the methods",
        flag_type=str, parse=str, file_check=_is_str, expected="a run folder name", rescoring=True,
    ),
    RunOption(
        key="device", field="device", flag="--device", metavar="DEVICE",
        help="torch device: auto (cuda, else mps, else cpu), cpu, cuda, cuda:N, mps.", shown_default="cpu",
        flag_type=str, parse=str, file_check=_is_str, expected="auto, cpu, cuda, cuda:N or mps",
        rescoring=True,
    ),
    RunOption(
        key="amp", field="amp", flag="--amp/--no-amp", metavar=None,
        help="Mixed precision (bfloat16 autocast).", shown_default="off",
        flag_type=bool, parse=bool, file_check=_is_bool, expected="true or false", rescoring=True,
    ),
    RunOption(
        key="kinds", field="kinds", flag="--kinds", metavar="CATEGORY=KIND,...",
        help="Kinds of non-MVTec categories, e.g. bricks=texture,bolt=object.", shown_default=None,
        flag_type=str, parse=parse_kinds, conversion="kinds",
        file_check=_is_table_of_kinds, expected='a table of category = "texture" or "object"',
    ),
    RunOption(
        key="params", field="method_params", flag="--set", metavar="METHOD.PARAM=VALUE",
        help="A hyperparameter, as a grid file's [params.METHOD] would set it (a TOML value); repeatable, "
        "e.g. --set cbigan.alpha=1e-4 --set l2ae.width=64.",
        shown_default=None, flag_type=list[str], parse=_parse_sets, conversion="params",
        file_check=_is_params,
        expected="a table per method of hyperparameter = value, e.g. [params.cbigan] alpha = 1e-4",
    ),
    RunOption(
        key="executor", field="executor", flag="--executor", metavar="NAME",
        help="sequential (one cell after another) or dask (cells as Dask tasks).", shown_default="sequential",
        flag_type=str, parse=str, file_check=lambda value: value in EXECUTORS,
        expected=f"one of {', '.join(EXECUTORS)}", commands=("run",),
    ),
    RunOption(
        key="scheduler", field="scheduler", flag="--scheduler", metavar="ADDRESS",
        help="With --executor dask: an existing scheduler, e.g. tcp://host:8786.", shown_default=None,
        flag_type=str, parse=str, file_check=_is_str, expected="a dask scheduler address, e.g. tcp://host:8786",
        commands=("run",), resuming=True,
    ),
    RunOption(
        key="workers", field="workers", flag="--workers", metavar="N",
        help="With --executor dask: start a local cluster of N worker processes.", shown_default=None,
        flag_type=int, parse=int, file_check=_is_int, expected="an integer", commands=("run",),
    ),
    RunOption(
        key="repeats", field="timing_repeats", flag="--repeats", metavar="N",
        help="Single-image scoring repeats for the latency figures; 6 or more give the median an interval.",
        shown_default="10", flag_type=int, parse=int, file_check=_is_int, expected="an integer",
        rescoring=True,
    ),
    RunOption(
        key="pixel_resolution", field="pixel_resolution", flag="--pixel-resolution", metavar="native|input",
        help="Pixel metrics at the ground truth's own size (native: maps upsampled bilinearly to the masks, "
        "every method against the same ground truth) or at each detector's input size (input: masks resized "
        "to it; faster).",
        shown_default="native", flag_type=str, parse=str, file_check=lambda value: value in PIXEL_RESOLUTIONS,
        expected=f"one of {', '.join(PIXEL_RESOLUTIONS)}", before="input", commands=("run",), rescoring=True,
    ),
    RunOption(
        key="save_maps", field="save_maps", flag="--save-maps/--no-save-maps", metavar=None,
        help="Write every test map at the masks' size as float32 TIFF, in the MVTec evaluation layout, under "
        "cells/<method>/<category>/seed<k>/maps (what `adbench evaluate` reads).",
        shown_default="off", flag_type=bool, parse=bool, file_check=_is_bool, expected="true or false",
        commands=("run",), rescoring=True,
    ),
    RunOption(
        key="pixel_ci_max_pixels", field="pixel_ci_max_pixels", flag="--pixel-ci-max-pixels", metavar="N",
        help="Confidence intervals of the pixel metrics (200 resamples of whole test images) only for test "
        "sets of at most this many pixels; 0: none.",
        shown_default="300,000,000", flag_type=int, parse=int, file_check=_is_int, expected="an integer",
        commands=("run",), rescoring=True,
    ),
)  # fmt: skip
OPTIONS_BY_KEY = {option.key: option for option in RUN_OPTIONS}


def flag_name(option: RunOption) -> str:
    """The flag as a message names it: --amp, not --amp/--no-amp."""
    return option.flag.split("/")[0]


def run_option_annotation(key: str) -> Any:
    """The typer annotation of the option `key`'s flag: for a command that takes it outside a grid."""
    option = OPTIONS_BY_KEY[key]
    shown = "" if option.shown_default is None else f" [default: {option.shown_default}]"
    info = typer.Option(option.flag, metavar=option.metavar, help=option.help + shown)
    if option.key == "all_categories":  # a plain switch: given or not
        return Annotated[bool, info]
    return Annotated[option.flag_type | None, info]


def _typer_parameter(option: RunOption) -> inspect.Parameter:
    default = False if option.key == "all_categories" else None
    return inspect.Parameter(
        option.key,
        inspect.Parameter.KEYWORD_ONLY,
        default=default,
        annotation=run_option_annotation(option.key),
    )


def with_run_options(command: Command) -> Callable[[Callable[..., Any]], Callable[..., Any]]:
    """Give a command function every run option of `command` as a flag. The function takes the flags
    given as `options`: grid-file keys to their parsed values, None for a flag not given."""
    declared = [option for option in RUN_OPTIONS if command in option.commands]

    def decorate(function: Callable[..., Any]) -> Callable[..., Any]:
        signature = inspect.signature(function, eval_str=True)
        own = [
            parameter.replace(kind=inspect.Parameter.KEYWORD_ONLY)
            for name, parameter in signature.parameters.items()
            if name != "options"
        ]
        # A command parameter named as an option key would be shadowed by the option, silently.
        assert not {option.key for option in declared} & {parameter.name for parameter in own}, function

        @functools.wraps(function)
        def with_options(**given: Any) -> Any:
            options = {option.key: _parsed(option, given.pop(option.key)) for option in declared}
            return function(options=options, **given)

        parameters = [*(_typer_parameter(option) for option in declared), *own]
        with_options.__signature__ = signature.replace(parameters=parameters)  # type: ignore[attr-defined]
        with_options.__annotations__ = {parameter.name: parameter.annotation for parameter in parameters}
        return with_options

    return decorate


def _parsed(option: RunOption, value: Any) -> Any:
    if value is None or (option.key == "all_categories" and value is False):
        return None
    return option.parse(value)


def given_flags(options: Mapping[str, Any]) -> list[str]:
    """The flags of `options` that were given, as their messages name them."""
    return [flag_name(OPTIONS_BY_KEY[key]) for key, value in options.items() if value is not None]
