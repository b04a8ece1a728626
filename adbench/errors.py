"""The one exception type the CLI turns into a one-line message.

Anything a user can fix (bad data, an unknown name, a run folder that already exists) is raised as
`AdbenchError` with a message that names the offending file or value and the fix. Everything else is a
bug and keeps its traceback.
"""

import difflib
from collections.abc import Sequence


class AdbenchError(Exception):
    """A problem with the user's input or environment, explained in one line."""


def unknown_name_message(what: str, name: str, valid: Sequence[str], where: str | None = None) -> str:
    """'unknown method 'l2a'. Did you mean 'l2ae'? Valid: ...' for any named thing."""
    near = difflib.get_close_matches(name, valid, n=3)
    hint = f" Did you mean {', '.join(repr(n) for n in near)}?" if near else ""
    place = f" in {where}" if where else ""
    return f"unknown {what} {name!r}{place}.{hint} Valid: {', '.join(valid)}"
