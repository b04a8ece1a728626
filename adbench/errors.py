"""The one exception type the CLI turns into a one-line message.

Anything a user can fix (bad data, an unknown name, a run folder that already exists) is raised as
`AdbenchError` with a message that names the offending file or value and the fix. Everything else is a
bug and keeps its traceback.
"""

import difflib
from collections.abc import Sequence


class AdbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def closest_names(name: str, valid: Sequence[str]) -> list[str]:
    """Up to three of `valid` that `name` was probably meant to be: case ignored ('AnoGAN' is 'anogan'),
    then near misses ('score_lamda' is 'score_lambda')."""
    by_lower = {option.lower(): option for option in valid}
    if name.lower() in by_lower:
        return [by_lower[name.lower()]]
    return [by_lower[near] for near in difflib.get_close_matches(name.lower(), list(by_lower), n=3)]


def did_you_mean(name: str, valid: Sequence[str]) -> str:
    """ " Did you mean 'x'?" for the closest names, or nothing."""
    near = closest_names(name, valid)
    return f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""


def unknown_name_message(what: str, name: str, valid: Sequence[str], where: str | None = None) -> str:
    """'unknown method 'l2a'. Did you mean 'l2ae'? Valid: ...' for any named thing."""
    place = f" in {where}" if where else ""
    return f"unknown {what} {name!r}{place}.{did_you_mean(name, valid)} Valid: {', '.join(valid)}"
