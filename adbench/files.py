"""Reading the user's text files (grid files, manifests, baselines) with every failure as one line.

A missing file, one this user may not read, a folder where a file should be, bytes that are not UTF-8
and text that is not JSON are all the user's to fix, so each is an AdbenchError naming the file.

Every JSON and TOML text a user can hand over (grid files, manifests, baselines, categories.toml, LOCO's
defects config, checkpoint metadata, --set values) is parsed by `parse_json`/`parse_toml`, which turn
what makes Python's own parsers fail in other ways than a syntax error (nesting deep enough to exhaust
the recursion limit, integers past its limit on digits) into the ValueError a syntax error is, and
refuse documents that would fail later, where they are used, shown or written: nested deeper than any
adbench file, holding an integer beyond the range of a float, or a string that is not valid Unicode (a
JSON escape of half a surrogate pair, which no UTF-8 file can hold).
"""

from __future__ import annotations

import json
import re
import sys
import tomllib
from collections.abc import Callable
from pathlib import Path
from typing import Any

from adbench.errors import AdbenchError


def read_text_file(path: Path, what: str, hint: str) -> str:
    """The file's text; `what` names the kind of file in the message, `hint` says what was expected."""
    try:
        return path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise AdbenchError(f"{path}: not found; {hint}") from None
    except IsADirectoryError:
        raise AdbenchError(f"{path}: a folder, not a {what}; {hint}") from None
    except PermissionError:
        raise AdbenchError(f"{path}: permission denied; make the {what} readable") from None
    except UnicodeDecodeError as error:
        raise AdbenchError(f"{path}: not a {what} (byte {error.start} is not UTF-8 text); {hint}") from None
    except OSError as error:
        raise AdbenchError(f"{path}: cannot read the {what} ({error.strerror})") from None


def read_json_file(path: Path, what: str, hint: str) -> Any:
    try:
        return parse_json(read_text_file(path, what, hint))
    except ValueError as error:
        raise AdbenchError(f"{path}: not a valid {what} ({error}); it was changed outside adbench") from None


# Deeper than any file adbench reads (a manifest nests 4 levels) and far from the recursion limit, which
# printing or writing a deeper document would reach.
MAX_NESTING = 64


def parse_json(text: str) -> Any:
    """`json.loads(text)`; every way it fails is a ValueError whose text says why in one line."""
    return _parsed(json.loads, text)


def parse_toml(text: str) -> dict[str, Any]:
    """`tomllib.loads(text)`; every way it fails is a ValueError whose text says why in one line (a
    syntax error is a `tomllib.TOMLDecodeError`)."""
    if _DEEP_DOTTED_KEY.search(text):
        raise ValueError(f"nested more than {MAX_NESTING} levels deep")
    return _parsed(tomllib.loads, text)


# tomllib takes time and memory quadratic in the parts of a dotted key (`a.a.a...`: 10,000 parts, 20 kB
# of text, take 400 MB), so a key of more parts than MAX_NESTING (or text in a string that looks like
# one) is refused before it is read. Matched from the start of a key only (the look-behind), so that the
# search stays near linear on any text.
_DEEP_DOTTED_KEY = re.compile(
    rf"(?<![A-Za-z0-9_.-])(?:(?:[A-Za-z0-9_-]+|\"[^\"\n]*\"|'[^'\n]*')[ \t]*\.[ \t]*){{{MAX_NESTING}}}"
)


def _parsed(parse: Callable[[str], Any], text: str) -> Any:
    try:
        document = parse(text)
    except RecursionError:
        raise ValueError(f"nested more than {MAX_NESTING} levels deep") from None
    except (json.JSONDecodeError, tomllib.TOMLDecodeError):
        raise
    except ValueError:  # the only other ValueError: an integer past Python's limit on decimal digits
        raise ValueError(f"an integer of more than {sys.get_int_max_str_digits():,} digits") from None
    if problem := _document_problem(document):
        raise ValueError(problem)
    return document


def _document_problem(document: Any) -> str | None:
    """Why a parsed document would fail where it is used, shown or written, or None; walked without
    recursion, however deep."""
    pending = [(document, 1)]
    while pending:
        value, depth = pending.pop()
        if depth > MAX_NESTING:
            return f"nested more than {MAX_NESTING} levels deep"
        if isinstance(value, int) and not _fits_a_float(value):
            # No number adbench reads comes near; such an integer fails wherever it meets a float.
            return "an integer beyond the range of a float (about 1.8e308)"
        if isinstance(value, str) and not encodes_as_utf8(value):
            return f"the string {value[:40]!r} holds half a surrogate pair, which is no character"
        if isinstance(value, dict):
            pending += [(item, depth + 1) for item in (*value.keys(), *value.values())]
        elif isinstance(value, list):
            pending += [(item, depth + 1) for item in value]
    return None


def _fits_a_float(number: int) -> bool:
    try:
        float(number)
    except OverflowError:
        return False
    return True


def encodes_as_utf8(text: str) -> bool:
    """False for text holding a lone surrogate (a JSON escape of half a pair, or bytes that were not
    UTF-8 decoded with surrogateescape), which no UTF-8 file or terminal can take."""
    try:
        text.encode("utf-8")
    except UnicodeEncodeError:
        return False
    return True
