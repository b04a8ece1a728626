"""Reading the user's text files (grid files, manifests, baselines) with every failure as one line.

A missing file, one this user may not read, a folder where a file should be, bytes that are not UTF-8
and text that is not JSON are all the user's to fix, so each is an AdbenchError naming the file.
"""

from __future__ import annotations

import json
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
        return json.loads(read_text_file(path, what, hint))
    except json.JSONDecodeError as error:
        raise AdbenchError(f"{path}: not a valid {what} ({error}); it was changed outside adbench") from None
