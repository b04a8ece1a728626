"""Hyperparameter values read from files, checked against a method's Params dataclass before anything
is built from them: a grid file's `[params.METHOD]` overrides and a checkpoint's stored params.

Types come from the dataclass's annotations. Ranges come from the field names, so that the same rules
hold for third-party Params that name their fields as the built-in ones do:

- every float is finite; learning rates (`learning_rate`, `*_learning_rate`, `lr`, `*_lr`) are > 0;
  Adam's betas (`beta1`, `*_beta2`, ...) lie in [0, 1); decays (`*decay`) in [0, 1];
- ints that size or count something (names ending in size, _dim, stride, channels, steps, layers,
  width, _count) are at least 1, and those that shape a network (the same but batch sizes, strides,
  steps and counts) at most `MAX_EXTENT`: a file lying about one of them cannot make the constructor
  allocate hundreds of GiB (several at once still can: a method bounds such combinations itself);
- `channels`, the input's, is 1 or 3 (the harness's `InputSpec`);
- angles in degrees (`*_deg`) lie in [-360, 360]; shifts (`*shift`), fractions of the image side, in
  [0, 1].

Fields are also checked against each other (`ordering_problem`), by name as well: `min_X` is at most
`max_X`, `patch_size` at most `image_size` (a patch is cut from the image) and `patch_stride` at most
`patch_size` (a wider stride leaves pixels that no patch covers).

A method's constructor may still refuse a combination (a side that is not a multiple of 16, ...).
"""

from __future__ import annotations

import dataclasses
import math
import re
import types
import typing
from collections.abc import Mapping
from typing import Any, TypeGuard

from adbench.errors import AdbenchError, did_you_mean

# Largest image or patch side, latent size, network width, channel or layer count a file may set.
MAX_EXTENT = 4096
_POSITIVE_SUFFIXES = ("size", "_dim", "stride", "channels", "steps", "layers", "width", "_count")
_EXTENT_SUFFIXES = ("size", "_dim", "channels", "layers", "width")
# (smaller, larger, why) by field name, each pair checked where a Params has both; every `min_X` is also
# at most its `max_X`.
_ORDERED_FIELDS = (
    ("patch_size", "image_size", "a patch is cut from the image"),
    ("patch_stride", "patch_size", "a wider stride leaves pixels that no patch covers"),
)


class ParamsError(ValueError):
    """Stored params that cannot build the method; the message names the field."""


def checked_params(method: str, defaults: Any, overrides: Mapping[str, Any]) -> Any:
    """`defaults` (a method's Params) with a grid file's `overrides` applied; an AdbenchError line for
    an unknown field, a value of another type than the field's, or one out of range."""
    hints = field_types(type(defaults))
    for key, value in overrides.items():
        if key not in hints:
            raise AdbenchError(
                f"params.{method}: unknown key {key!r}.{did_you_mean(key, list(hints))} "
                f"Valid keys: {', '.join(hints)}"
            )
        if problem := type_problem(hints[key], value):
            default = getattr(defaults, key)
            like = "" if default is None else f" like the default {default!r}"
            raise AdbenchError(f"params.{method}.{key} = {value!r}: {problem}{like}")
        if problem := range_problem(key, coerced(hints[key], value)):
            raise AdbenchError(f"params.{method}.{key} = {value!r}: {problem}")
    params = dataclasses.replace(defaults, **{key: coerced(hints[key], v) for key, v in overrides.items()})
    if problem := ordering_problem({name: getattr(params, name) for name in hints}):
        raise AdbenchError(f"params.{method}: {problem}")
    return params


def checked_fields(params_class: type, values: Any) -> dict[str, Any]:
    """The fields of `params_class` as a file stored them (a JSON object), checked, ints for floats
    made floats; ParamsError naming the first missing, unknown, mistyped or out-of-range field."""
    if not isinstance(values, dict):
        raise ParamsError(f"are {type(values).__name__}, not an object of {params_class.__name__} fields")
    hints = field_types(params_class)
    unknown = sorted(set(values) - set(hints))
    if unknown:
        raise ParamsError(
            f"have unknown field {unknown[0]!r}; {params_class.__name__} has {', '.join(hints)}"
        )
    # A field added since the file was written takes its default, as the constructor would give it.
    missing = [
        item.name for item in dataclasses.fields(params_class) if item.name not in values and _required(item)
    ]
    if missing:
        raise ParamsError(f"lack field {missing[0]!r}")
    for key, value in values.items():
        problem = type_problem(hints[key], value) or range_problem(key, coerced(hints[key], value))
        if problem:
            raise ParamsError(f"{key} = {value!r}: {problem}")
    fields = {key: coerced(hints[key], value) for key, value in values.items()}
    if problem := ordering_problem(fields):
        raise ParamsError(problem)
    return fields


def _required(field: dataclasses.Field[Any]) -> bool:
    return field.default is dataclasses.MISSING and field.default_factory is dataclasses.MISSING


def field_types(params_class: type) -> dict[str, Any]:
    """Each field's annotation, resolved (under `from __future__ import annotations` they are strings)."""
    hints = typing.get_type_hints(params_class)
    return {item.name: hints[item.name] for item in dataclasses.fields(params_class)}


def type_problem(hint: Any, value: Any) -> str | None:
    """'expected int' when `value` is not of the annotated type, else None."""
    if _accepts(hint, value):
        return None
    return f"expected {hint.__name__ if isinstance(hint, type) else hint}"


def _accepts(hint: Any, value: Any) -> bool:
    if typing.get_origin(hint) in (typing.Union, types.UnionType):
        return any(_accepts(option, value) for option in typing.get_args(hint))
    if typing.get_origin(hint) is typing.Literal:
        return any(type(value) is type(option) and value == option for option in typing.get_args(hint))
    if hint is type(None):
        return value is None
    # bool is an int to Python, never to a user: true is no size and no rate.
    if hint is bool:
        return isinstance(value, bool)
    if hint is int:
        return isinstance(value, int) and not isinstance(value, bool)
    if hint is float:
        return isinstance(value, int | float) and not isinstance(value, bool)
    if hint is str:
        return isinstance(value, str)
    return True  # any other annotation is the method's constructor to check


def coerced(hint: Any, value: Any) -> Any:
    """An int given for a float field, as a float (inf when it has no float)."""
    if hint is float and isinstance(value, int):
        try:
            return float(value)
        except OverflowError:
            return math.inf if value > 0 else -math.inf
    return value


def range_problem(name: str, value: Any) -> str | None:
    """What is wrong with a well-typed `value` for the field `name`, by the rules above; None if fine."""
    if isinstance(value, float):
        return _float_problem(name, value)
    if isinstance(value, int) and not isinstance(value, bool):
        return _int_problem(name, value)
    return None


def _float_problem(name: str, value: float) -> str | None:
    if not math.isfinite(value):
        return "must be a finite number"
    if ("learning_rate" in name or re.fullmatch(r"(.*_)?lr", name)) and value <= 0:
        return "must be greater than 0 (a learning rate)"
    if re.fullmatch(r"(.*_)?beta\d", name) and not 0 <= value < 1:
        return "must be in [0, 1) (an Adam beta)"
    if name.endswith("decay") and not 0 <= value <= 1:
        return "must be in [0, 1] (a decay)"
    if name.endswith("_deg") and not -360 <= value <= 360:
        return "must be in [-360, 360] (an angle in degrees)"
    if name.endswith("shift") and not 0 <= value <= 1:
        return "must be in [0, 1] (a shift, as a share of the image side)"
    return None


def ordering_problem(values: Mapping[str, Any]) -> str | None:
    """The first pair of `values` (fields by name) out of order by the rules above; None when every pair
    is in order, or lacks a field, or holds something other than numbers."""
    ranges = [
        (name, f"max_{name[4:]}", "the low end of a range") for name in values if name.startswith("min_")
    ]
    for smaller, larger, why in [*ranges, *_ORDERED_FIELDS]:
        low, high = values.get(smaller), values.get(larger)
        if _is_number(low) and _is_number(high) and low > high:
            return f"{smaller} = {low!r} must be at most {larger} = {high!r} ({why})"
    return None


def _is_number(value: Any) -> TypeGuard[int | float]:
    return isinstance(value, int | float) and not isinstance(value, bool)


def _int_problem(name: str, value: int) -> str | None:
    if name == "channels" and value not in (1, 3):
        return "must be 1 or 3 (grayscale or colour input)"
    if name.endswith(_POSITIVE_SUFFIXES) and value < 1:
        return "must be at least 1 (a size or count)"
    if name.endswith(_EXTENT_SUFFIXES) and not name.endswith("batch_size") and value > MAX_EXTENT:
        return f"must be at most {MAX_EXTENT} (a side, width or count that sizes the networks)"
    return None
