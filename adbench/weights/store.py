"""The local store of pretrained weights: one checked safetensors file per registry entry.

A publisher's file is imported once (`import_file`): its checksum is verified where the registry knows
it, a PyTorch pickle is read with torch's weights-only reader (so a file carrying code is refused, never
run), and its tensor names and shapes are checked; it is then stored as `<name>.safetensors` in
`<cache>/weights`, with the source file's name and sha256 in the file's metadata. Every `load` checks the
names and shapes again, so a stored file changed afterwards is refused rather than half-used.
"""

from __future__ import annotations

import hashlib
import pickle
import re
import warnings
from collections.abc import Iterable, Mapping
from pathlib import Path

import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from adbench.atomic import write_atomic
from adbench.data.cache import cache_root
from adbench.errors import AdbenchError
from adbench.weights.registry import WeightFile, lookup

_HASH_CHUNK = 1 << 20
# The line of torch's weights-only refusal that names the function or class a pickle would import.
_NAMED_GLOBAL = re.compile(r"^\s*(?:WeightsUnpickler error:\s*)?(.*\bGLOBAL\b.*)$", re.MULTILINE)


def weights_folder() -> Path:
    return cache_root() / "weights"


def stored_path(name: str) -> Path:
    """Where weights `name` are (or would be) stored."""
    return weights_folder() / f"{lookup(name).name}.safetensors"


def present(name: str) -> Path | None:
    """The stored file of weights `name`, or None when they have not been imported."""
    path = stored_path(name)
    return path if path.is_file() else None


def how_to_store(entry: WeightFile, again: bool = False) -> str:
    """The commands that put `entry`'s file into the store (`again`: replacing the one there)."""
    import_command = f"`adbench weights import {entry.name} FILE`"
    if not entry.downloadable:
        how = f" ({entry.how_to_get})" if entry.how_to_get else ""
        return f"download {entry.file_name} from {entry.url} by hand{how} and run {import_command}"
    force = " --force" if again else ""
    return (
        f"run `adbench weights fetch {entry.name}{force}`, or download {entry.url} yourself and run "
        f"{import_command}"
    )


def require(names: Iterable[str]) -> None:
    """Refuse, in one line naming the first missing file and how to get it, a run that needs weights
    not in the store; for commands to call before they train, not after."""
    for name in names:
        if present(name) is None:
            entry = lookup(name)
            raise AdbenchError(
                f"weights {name!r} ({entry.file_name}) are not in {weights_folder()}: {how_to_store(entry)}"
            )


def load(name: str) -> dict[str, torch.Tensor]:
    """The stored tensors of weights `name`, on the CPU, after checking their names and shapes."""
    require([name])
    entry, path = lookup(name), stored_path(name)
    fix = f"the stored file was changed or damaged after it was imported: {how_to_store(entry, again=True)}"
    try:
        # The header alone gives the shapes: a wrong file is refused before its tensors are read.
        with safe_open(str(path), framework="pt") as stored:
            keys = stored.keys()  # a safe_open file has keys() but cannot be iterated
            difference = entry.difference({key: tuple(stored.get_slice(key).get_shape()) for key in keys})
            if difference is None:
                return {key: stored.get_tensor(key) for key in keys}
    except (SafetensorError, OSError) as error:
        raise AdbenchError(f"{path}: unreadable ({_first_line(error)}); {fix}") from None
    raise AdbenchError(f"{path}: {difference}; {fix}")


def import_file(name: str, path: Path) -> Path:
    """Check the publisher's file at `path` and store its tensors as weights `name`; the stored path.
    Nothing is stored unless every check passes."""
    entry = lookup(name)
    digest = sha256_of(path)
    if entry.sha256 is not None and not digest.startswith(entry.sha256):
        shown = entry.sha256 if len(entry.sha256) == 64 else f"{entry.sha256}…"
        raise AdbenchError(
            f"{path}: sha256 {digest}, but {entry.file_name}'s is {shown}: not the publisher's file (a "
            f"damaged download or another file); {how_to_store(entry, again=True)}"
        )
    tensors = _read(entry, path)
    if difference := entry.difference({key: tuple(tensor.shape) for key, tensor in tensors.items()}):
        raise AdbenchError(
            f"{path}: {difference}; not {entry.description} ({entry.name}): {how_to_store(entry, again=True)}"
        )
    metadata = {"weights": entry.name, "source_file": path.name, "source_sha256": digest}
    target = stored_path(name)
    storable = _storable(tensors)
    write_atomic(target, lambda tmp: save_file(storable, str(tmp), metadata=metadata))
    return target


def sha256_of(path: Path) -> str:
    digest = hashlib.sha256()
    try:
        with open(path, "rb") as stream:
            while chunk := stream.read(_HASH_CHUNK):
                digest.update(chunk)
    except OSError as error:
        reason = (error.strerror or "unreadable").lower()
        raise AdbenchError(f"{path}: {reason}; give the path of the downloaded weights file") from None
    return digest.hexdigest()


def _read(entry: WeightFile, path: Path) -> dict[str, torch.Tensor]:
    """The tensors of the file at `path`, in `entry`'s format."""
    if entry.format == "safetensors":
        try:
            return load_file(str(path), device="cpu")
        except SafetensorError as error:
            raise AdbenchError(
                f"{path}: not a safetensors file ({_first_line(error)}); {how_to_store(entry, again=True)}"
            ) from None
    try:
        # torch warns of a pickle protocol it was not written with; the file is read or refused either way.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", UserWarning)
            loaded = torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as error:
        # torch's weights-only reader refuses with this one exception both a pickle that would import a
        # function or class (its message names that GLOBAL) and one it cannot parse.
        if named := _NAMED_GLOBAL.search(str(error)):
            raise AdbenchError(
                f"{path}: holds code, not only tensors ({_first_line(named.group(1))}); refused, since "
                f"reading it would run that code: {how_to_store(entry, again=True)}"
            ) from None
        raise _not_weights(entry, path, _parse_failure(error)) from None
    except Exception as error:  # torch reports a damaged or foreign file as KeyError, EOFError, RuntimeError…
        raise _not_weights(entry, path, f"{type(error).__name__}: {_first_line(error)}") from None
    # A training checkpoint keeps the network's tensors under "state_dict", beside the optimiser's.
    if isinstance(loaded, Mapping) and "state_dict" in loaded:
        loaded = loaded["state_dict"]
    if not isinstance(loaded, Mapping) or not loaded:
        what = "no tensors" if isinstance(loaded, Mapping) else f"a {type(loaded).__name__}"
        raise AdbenchError(f"{path}: holds {what}, not a state dict; {how_to_store(entry, again=True)}")
    for key, value in loaded.items():
        if not isinstance(key, str) or not isinstance(value, torch.Tensor):
            raise AdbenchError(
                f"{path}: entry {key!r} is a {type(value).__name__}, not a named tensor; give a file that "
                f"holds only the network's tensors (a state dict): {how_to_store(entry, again=True)}"
            )
    return dict(loaded)


def _storable(tensors: Mapping[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The tensors as safetensors stores them: contiguous, none sharing memory with another (tied weights
    are stored twice, since safetensors refuses shared ones)."""
    storable: dict[str, torch.Tensor] = {}
    seen: set[int] = set()
    for key, tensor in tensors.items():
        pointer = tensor.untyped_storage().data_ptr()
        if pointer in seen and tensor.numel():
            tensor = tensor.clone()
        seen.add(pointer)
        storable[key] = tensor.contiguous()
    return storable


def _first_line(error: BaseException | str) -> str:
    """The first sentence of an error's message: the rest of torch's messages is advice for its own API."""
    text = str(error).strip()
    return re.split(r"(?<=\.)\s|\n", text, maxsplit=1)[0].rstrip(".") if text else "no details"


def _not_weights(entry: WeightFile, path: Path, reason: str) -> AdbenchError:
    return AdbenchError(f"{path}: not a PyTorch weights file ({reason}); {how_to_store(entry, again=True)}")


def _parse_failure(error: pickle.UnpicklingError) -> str:
    """What torch's weights-only reader could not parse ("Unsupported operand 110"), from its many-line
    message; its first line otherwise."""
    _, marker, detail = str(error).partition("WeightsUnpickler error:")
    return _first_line(detail if marker else error)
