"""Every reader of a file a user can hand over, fed generated hostile content (#28 item 4): it gives a
result or an AdbenchError of one line naming the file, never another exception. The classes an attacker
found are drawn on purpose (nesting deep enough to exhaust the recursion limit, integers past Python's
limit on digits, CSV fields past the csv module's limit, bytes that are not UTF-8), inside documents
otherwise shaped like the real ones so that the hostile value reaches each reader's later checks too.
Then one command per class, as a user meets it: exit code 2 and one line on stderr."""

from __future__ import annotations

import json
import shutil
import tempfile
import warnings
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, example, given, settings
from hypothesis import strategies as st
from safetensors.torch import load_file, save_file

from adbench.data import mvtec
from adbench.data.formats.mvtec_loco import read_defects_config
from adbench.data.formats.visa import SPLIT_FILE, _read_split
from adbench.data.layout import KINDS_FILE, read_kinds
from adbench.errors import AdbenchError
from adbench.evaluation.external_maps import read_map
from adbench.files import MAX_NESTING
from adbench.report.gate import read_baselines
from adbench.run.config import RunConfig, read_grid_file
from adbench.run.folder import MANIFEST, Manifest
from adbench_methods.autoencoder.detector import L2Autoencoder
from tests.helpers import adbench, one_line, snapshot

HOSTILE = settings(
    max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large]
)
CHECKPOINT = Path("cells/l2ae/washer/seed0/checkpoint.safetensors")


@pytest.fixture(scope="module")
def scratch() -> Iterator[Path]:
    """One folder for every example of the module (hypothesis runs a test's examples in one call)."""
    with tempfile.TemporaryDirectory() as folder:
        yield Path(folder)


def _result_or_one_line(read: Callable[[], object], path: Path) -> None:
    """`read()` returns, or raises AdbenchError of one line that names `path`; anything else fails, a
    warning too (one more line on the terminal)."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error")
            read()
    except AdbenchError as error:
        assert "\n" not in str(error) and str(path) in str(error), str(error)


# --- what is drawn ----------------------------------------------------------------------------------

# Around the nesting refused and around the recursion limit the parsers hit.
DEPTHS = st.sampled_from([MAX_NESTING - 2, MAX_NESTING + 1, 900, 990, 1_100, 100_000])
DIGITS = st.sampled_from([4_300, 4_301, 50_000])


def _deep_array(depth: int) -> str:
    return "[" * depth + "]" * depth


@st.composite
def hostile_json_values(draw: st.DrawFn) -> str:
    """The text of one JSON value an attacker would write."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return _deep_array(draw(DEPTHS))
    if choice == 1:
        return '{"a":' * (depth := draw(DEPTHS)) + "0" + "}" * depth
    if choice == 2:
        return draw(st.sampled_from(["", "-"])) + "7" * draw(DIGITS)
    if choice == 3:
        return draw(
            st.sampled_from(
                ["NaN", "-Infinity", '"\\udcff"', '"a\\u0000b"', "1e999", '"' + "x" * 70_000 + '"']
            )
        )
    scalars = st.none() | st.booleans() | st.integers() | st.floats() | st.text(max_size=20)
    values = st.recursive(
        scalars,
        lambda inner: st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=8), inner, max_size=3),
    )
    return json.dumps(draw(values))


@st.composite
def hostile_toml_values(draw: st.DrawFn) -> str:
    """The text of one TOML value an attacker would write."""
    choice = draw(st.integers(0, 4))
    if choice == 0:
        return _deep_array(draw(DEPTHS))
    if choice == 1:
        return "{a = " * (depth := draw(DEPTHS)) + "1" + "}" * depth
    if choice == 2:
        return draw(st.sampled_from(["", "-", "0x", "0o", "0b"])) + "1" * draw(DIGITS)
    if choice == 3:
        return draw(
            st.sampled_from(["nan", "-inf", "1979-05-27T07:32:00Z", '"\\u0000"', "'''x'''", "{}", "[1, 'a']"])
        )
    return json.dumps(draw(st.text(max_size=20)))  # a JSON string is a TOML basic string


def _paths(document: Any, at: tuple = ()) -> Iterator[tuple]:
    """Where a value sits in a JSON document: every key and index path, the whole included."""
    yield at
    if isinstance(document, dict):
        for key, value in document.items():
            yield from _paths(value, (*at, key))
    elif isinstance(document, list):
        for index, value in enumerate(document):
            yield from _paths(value, (*at, index))


@st.composite
def hostile_json(draw: st.DrawFn, genuine: Any) -> bytes:
    """`genuine` with one of its values (or the whole) replaced by hostile text; or text or bytes alone."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return draw(hostile_json_values()).encode()
    where = draw(st.sampled_from(list(_paths(genuine))))
    if not where:
        return draw(hostile_json_values()).encode()
    marker = "\0hostile\0"
    document = json.loads(json.dumps(genuine))
    parent = document
    for step in where[:-1]:
        parent = parent[step]
    parent[where[-1]] = marker
    return json.dumps(document).replace(json.dumps(marker), draw(hostile_json_values())).encode()


@st.composite
def hostile_toml(draw: st.DrawFn, lines: list[str]) -> bytes:
    """TOML `lines` (`key = value` or `[table]`) with one value replaced, deep keys or tables added, or
    text or bytes alone."""
    choice = draw(st.integers(0, 9))
    if choice == 0:
        return draw(st.binary(max_size=200))
    if choice == 1:
        return ("a = " + draw(hostile_toml_values())).encode()
    if choice == 2:  # dotted keys and table headers nest without brackets
        keys = ".".join(["a"] * draw(DEPTHS))
        return draw(st.sampled_from([f"{keys} = 1\n", f"[{keys}]\nb = 1\n"])).encode()
    index = draw(st.sampled_from([i for i, line in enumerate(lines) if " = " in line]))
    key = lines[index].partition(" = ")[0]
    changed = [*lines[:index], f"{key} = {draw(hostile_toml_values())}", *lines[index + 1 :]]
    return "\n".join(changed).encode()


# --- grid files and manifests -------------------------------------------------------------------------

GRID_LINES = [
    'methods = ["l2ae"]',
    'categories = ["pin"]',
    "seeds = [0, 1]",
    'budget = "smoke"',
    "repeats = 6",
    'kinds = {pin = "object"}',
    "[params.l2ae]",
    "latent_dim = 16",
]


def _manifest(dataset: Path) -> dict[str, Any]:
    config = RunConfig(methods=("l2ae",), categories=("washer",), data=dataset, run_name="one").to_manifest()
    cell = {"method": "l2ae", "category": "washer", "seed": 0, "checkpoint": str(CHECKPOINT)}
    return {"run_id": "one", "status": "finished", "config": config, "dataset": str(dataset), "cells": [cell]}


def _build_config(options: dict[str, Any]) -> None:
    """The RunConfig the command line would build from a grid file's options: AdbenchError of one line
    (a value may have come from the file or a flag, so the file is not always named), never another."""
    try:
        RunConfig.from_options(options)
    except AdbenchError as error:
        assert "\n" not in str(error), str(error)


@HOSTILE
@given(content=hostile_toml(GRID_LINES))
@example(content=("categories = " + _deep_array(100_000)).encode())
@example(content=b"seeds = [" + b"1" * 5_000 + b"]")
@example(content=b"seeds = [0x" + b"f" * 5_000 + b"]")  # read past the limit on digits, then unprintable
@example(content=("a." * 100_000 + "a = 1").encode())  # quadratic in tomllib: 40 GB
def test_grid_toml(scratch, content):
    path = scratch / "grid.toml"
    path.write_bytes(content)
    _result_or_one_line(lambda: _build_config(read_grid_file(path)), path)


@HOSTILE
@given(data=st.data())
def test_manifests(scratch, tiny_root, data):
    """What --config manifest.json, --resume, --eval-only and `time --from` read of a run folder."""
    run_dir = scratch / "one"
    run_dir.mkdir(exist_ok=True)
    path = run_dir / MANIFEST
    path.write_bytes(data.draw(hostile_json(_manifest(tiny_root))))
    _result_or_one_line(lambda: _build_config(read_grid_file(path)), path)  # --config manifest.json
    _result_or_one_line(lambda: RunConfig.from_manifest(run_dir), path)  # --resume
    _result_or_one_line(lambda: RunConfig.for_eval_only(run_dir, {}), path)  # --eval-only, time --from
    _result_or_one_line(lambda: Manifest.read(run_dir), path)  # --resume, report, compare


# --- the dataset's own files ---------------------------------------------------------------------------


@HOSTILE
@given(content=hostile_toml(["[kinds]", 'pin = "object"', 'sand = "texture"']))
def test_categories_toml(scratch, content):
    path = scratch / KINDS_FILE
    path.write_bytes(content)
    _result_or_one_line(lambda: read_kinds(scratch, ["pin"], {}, mvtec.KINDS), path)


LOCO_CONFIG = [
    {"defect_name": "missing", "pixel_value": 255, "saturation_threshold": 1.0, "relative_saturation": True},
    {"defect_name": "extra", "pixel_value": 254, "saturation_threshold": 2000, "relative_saturation": False},
]


@HOSTILE
@given(content=hostile_json(LOCO_CONFIG))
@example(content=json.dumps([LOCO_CONFIG[0] | {"saturation_threshold": 10**400}]).encode())
def test_loco_defects_config(scratch, content):
    path = scratch / "defects_config.json"
    path.write_bytes(content)
    _result_or_one_line(lambda: read_defects_config(path), path)


SPLIT_ROWS = [
    ["object", "split", "label", "image", "mask"],
    ["pin", "train", "normal", "pin/Data/Images/Normal/000.JPG", ""],
    ["pin", "test", "anomaly", "pin/Data/Images/Anomaly/000.JPG", "pin/Data/Masks/Anomaly/000.png"],
]
CSV_FIELDS = st.text(max_size=12) | st.sampled_from(
    ["x" * 140_000, '"' + "x" * 140_000 + '"', "a\0b", '"a\nb"', '"', "../../x", "/etc/passwd", "pin/\udcff"]
)


@HOSTILE
@given(
    rows=st.lists(st.lists(CSV_FIELDS, max_size=7), max_size=4),
    keep_header=st.booleans(),
    line_end=st.sampled_from(["\n", "\r\n", "\r"]),
)
@example(rows=[["pin", "train", "normal", "x" * 140_000, ""]], keep_header=True, line_end="\n")
@example(rows=[['"\n']], keep_header=False, line_end="\n")  # a column name of two lines
def test_visa_split_file(scratch, rows, keep_header, line_end):
    path = scratch / SPLIT_FILE
    path.parent.mkdir(exist_ok=True)
    lines = [*(SPLIT_ROWS if keep_header else []), *rows]
    path.write_bytes(line_end.join(",".join(row) for row in lines).encode("utf-8", "surrogateescape"))
    _result_or_one_line(lambda: _read_split(scratch), path)


# --- baselines, checkpoints, maps ------------------------------------------------------------------------

BASELINE = {
    "format": 1,
    "runs": ["one"],
    "protocol": {
        "budget": "smoke",
        "dataset": "built-in synthetic",
        "seeds": [0],
        "pixel_resolution": "native",
    },
    "entries": [{"method": "l2ae", "category": "pin", "metric": "image_auroc", "value": 0.8}],
}


@HOSTILE
@given(content=hostile_json(BASELINE))
@example(content=json.dumps(BASELINE).replace('"l2ae"', '"\\udcff"').encode())  # no UTF-8 can hold it
def test_baselines(scratch, content):
    path = scratch / "baseline.json"
    path.write_bytes(content)
    _result_or_one_line(lambda: read_baselines(path), path)


PER_VENDOR_BASELINES = {
    "format": 2,
    "baselines": [
        {**{k: v for k, v in BASELINE.items() if k != "format"}, "protocol": {"cpu_vendor": vendor}}
        for vendor in ("GenuineIntel", "AuthenticAMD")
    ],
}


@HOSTILE
@given(content=hostile_json(PER_VENDOR_BASELINES))
def test_per_vendor_baselines(scratch, content):
    path = scratch / "baseline.json"
    path.write_bytes(content)
    _result_or_one_line(lambda: read_baselines(path), path)


@st.composite
def hostile_tensors(draw: st.DrawFn, genuine: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    """The genuine tensors with one renamed, reshaped, of another dtype, dropped or added, or none changed."""
    tensors = dict(genuine)
    name = draw(st.sampled_from(sorted(tensors)))
    change = draw(st.sampled_from(["none", "rename", "reshape", "dtype", "drop", "add"]))
    if change == "rename":
        tensors[name + draw(st.text(min_size=1, max_size=3))] = tensors.pop(name)
    elif change == "reshape":
        tensors[name] = torch.zeros(draw(st.lists(st.integers(0, 5), max_size=4)))
    elif change == "dtype":
        dtype = draw(
            st.sampled_from([torch.float16, torch.bfloat16, torch.float64, torch.int64, torch.uint8])
        )
        tensors[name] = tensors[name].to(dtype)
    elif change == "drop":
        del tensors[name]
    elif change == "add":
        tensors["extra\nline"] = torch.zeros(1)
    return tensors


@HOSTILE
@given(data=st.data())
def test_checkpoint_metadata_and_tensors(scratch, genuine_checkpoint, data):
    tensors, params = genuine_checkpoint
    metadata = {
        "method": data.draw(st.sampled_from(["l2ae", "ssimae", "", "l2ae\n"]) | st.text(max_size=10)),
        "params": data.draw(hostile_json(params)).decode("utf-8", "replace"),
    }
    if data.draw(st.booleans()):
        metadata = {"method": "l2ae", "params": json.dumps(params)}  # genuine params, lying tensors
    path = scratch / "checkpoint.safetensors"
    save_file(data.draw(hostile_tensors(tensors)), str(path), metadata=metadata)
    _result_or_one_line(lambda: L2Autoencoder.load(path), path)


def _npy_header(descr: str, fortran: str, shape: str) -> bytes:
    header = f"{{'descr': {descr}, 'fortran_order': {fortran}, 'shape': {shape}, }}".encode()
    header += b" " * (-(len(header) + 11) % 64) + b"\n"
    return b"\x93NUMPY\x01\x00" + len(header).to_bytes(2, "little") + header


@HOSTILE
@given(
    descr=st.sampled_from(["'<f4'", "'|O'", "'<U3'", "[('a', '<f4')]", "'x'", "(" * 500 + ")" * 500]),
    fortran=st.sampled_from(["False", "True", "1", "'no'"]),
    shape=st.sampled_from(["(4, 5)", "(5, 4)", "(4, 5, 1)", "(10**12, 10**12)", "(-4, -5)", "()", "((4,),)"]),
    body=st.binary(max_size=120),
)
def test_npy_maps(scratch, descr, fortran, shape, body):
    path = scratch / "000.npy"
    path.write_bytes(_npy_header(descr, fortran, shape) + body)
    _result_or_one_line(lambda: read_map(path, (4, 5)), path)


@HOSTILE
@given(start=st.sampled_from([b"II*\x00", b"MM\x00*", b"II+\x00", b""]), body=st.binary(max_size=300))
@example(start=b"II*\x00", body=b"\x00\x00\x00\x01")  # Pillow warns of corrupt EXIF data
def test_tiff_maps(scratch, start, body):
    path = scratch / "000.tiff"
    path.write_bytes(start + body)
    _result_or_one_line(lambda: read_map(path, (4, 5)), path)


# --- one command per class --------------------------------------------------------------------------------


def _refused(result, path: Path | str) -> str:
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(path) in line, line
    return line


@pytest.mark.parametrize("value", [_deep_array(100_000), "{a = " * 5_000 + "1" + "}" * 5_000])
def test_a_deeply_nested_grid_file_is_one_line(tmp_path, value):
    path = tmp_path / "grid.toml"
    path.write_text(f'methods = ["l2ae"]\ncategories = {value}\n')
    line = _refused(adbench("run", "--config", str(path)), path)
    assert f"nested more than {MAX_NESTING} levels deep" in line


@pytest.mark.parametrize(
    ("value", "problem"),
    [
        (_deep_array(100_000), f"nested more than {MAX_NESTING} levels deep"),
        ("9" * 5_000, "of more than 4,300"),
    ],
)
def test_a_set_value_python_cannot_hold_is_one_line(tiny_root, tmp_path, value, problem):
    """--set reads its value as TOML, and as a bare word where it is no TOML; this is neither."""
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--data", str(tiny_root), "--out", str(tmp_path),
        "--set", f"l2ae.latent_dim={value}",
    )  # fmt: skip
    assert "--set l2ae.latent_dim: its value is " in _refused(result, "--set l2ae.latent_dim")
    assert problem in result.stderr and list(tmp_path.iterdir()) == []


def test_an_integer_past_pythons_digit_limit_in_a_manifest_is_one_line(one_cell_run, tmp_path):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    path = run_dir / MANIFEST
    path.write_text(path.read_text().replace('"seeds": [\n      0\n    ]', '"seeds": [' + "9" * 5_000 + "]"))
    assert "9" * 5_000 in path.read_text()
    before = snapshot(run_dir)
    line = _refused(adbench("run", "--resume", str(run_dir)), path)
    assert "an integer of more than 4,300 digits" in line
    assert snapshot(run_dir) == before


def test_a_split_file_field_past_the_csv_limit_is_one_line(tmp_path):
    path = tmp_path / SPLIT_FILE
    path.parent.mkdir()
    path.write_text("object,split,label,image,mask\n" + "pin,train,normal," + "x" * 200_000 + ",\n")
    line = _refused(adbench("data", "info", str(tmp_path)), path)
    assert "field larger than field limit" in line


@pytest.mark.parametrize("option", ["--out", "--data", "--name", "--config"])
def test_an_argument_that_is_not_utf_8_is_one_line(tiny_root, tmp_path, option):
    value = "\udcff" if option == "--name" else str(tmp_path / "caf\udce9")  # as Python decodes b"\xe9"
    flags = {"--out": str(tmp_path), "--data": str(tiny_root), "--name": "n"} | {option: value}
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", *(x for kv in flags.items() for x in kv)
    )
    line = _refused(
        result, f"{option} {value.encode('utf-8', 'surrogateescape').decode('utf-8', 'backslashreplace')}"
    )
    assert "not valid UTF-8" in line
    assert list(tmp_path.iterdir()) == []


@pytest.mark.parametrize("name", ["categories.toml", "cells/l2ae/washer/seed0/scores.csv"])
def test_a_folder_where_a_file_belongs_is_one_line(one_cell_run, tiny_root, tmp_path, name):
    if name == KINDS_FILE:
        root = Path(shutil.copytree(tiny_root, tmp_path / "data"))
        (root / name).unlink()
        (root / name).mkdir()
        _refused(adbench("data", "info", str(root), "--categories", "pin"), root / name)
    else:
        run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
        (run_dir / name).unlink()
        (run_dir / name).mkdir()
        _refused(adbench("report", str(run_dir), "--out", str(tmp_path / "report.md")), run_dir / name)
        assert not (tmp_path / "report.md").exists()


@pytest.mark.parametrize("device", ["meta", "xpu", "hpu", "mkldnn"])
def test_a_device_torch_knows_but_adbench_cannot_use_is_one_line(tiny_root, tmp_path, device):
    result = adbench(
        "run", "--methods", "l2ae", "--categories", "pin", "--data", str(tiny_root), "--out", str(tmp_path),
        "--budget", "smoke", "--device", device,
    )  # fmt: skip
    assert f"--device {device}: not a device adbench runs on" in _refused(result, f"--device {device}")
    assert list(tmp_path.iterdir()) == []


def test_a_negative_synth_seed_is_one_line(tmp_path):
    out = tmp_path / "synthetic"
    _refused(adbench("data", "synth", "--out", str(out), "--seed", "-1"), "--seed -1")
    assert list(tmp_path.iterdir()) == []


def _rewrite_checkpoint(run_dir: Path, change: Callable[[dict[str, torch.Tensor]], None]) -> Path:
    """The run's checkpoint with `change` made to its tensors, its metadata kept."""
    from safetensors import safe_open

    path = run_dir / CHECKPOINT
    with safe_open(str(path), framework="pt") as handle:
        metadata = handle.metadata()
    tensors = load_file(str(path))
    change(tensors)
    save_file(tensors, str(path), metadata=metadata)
    return path


def _first_weight(tensors: dict[str, torch.Tensor]) -> str:
    return next(name for name, tensor in sorted(tensors.items()) if tensor.ndim > 1)


def test_a_checkpoint_with_tensors_of_other_shapes_is_one_line(one_cell_run, tmp_path):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    tensors = load_file(str(run_dir / CHECKPOINT))
    name = _first_weight(tensors)
    shape = list(tensors[name].shape)
    wider = [shape[0] * 2, *shape[1:]]

    def widen(stored: dict[str, torch.Tensor]) -> None:
        stored[name] = torch.zeros(wider)

    path = _rewrite_checkpoint(run_dir, widen)
    line = _refused(adbench("run", "--eval-only", str(run_dir), "--out", str(tmp_path / "runs")), path)
    assert "does not match l2ae's current parameters or networks" in line
    assert f"tensor {name!r} has shape {wider}, the networks built from its params {shape}" in line
    assert "saved by another version of l2ae" in line and "retrain this cell" in line
    assert not (tmp_path / "runs").exists() or not any((tmp_path / "runs").iterdir())


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_checkpoint_with_tensors_of_another_dtype_is_refused(one_cell_run, tmp_path, dtype):
    run_dir = Path(shutil.copytree(one_cell_run, tmp_path / "one"))
    name = _first_weight(load_file(str(run_dir / CHECKPOINT)))

    def convert(stored: dict[str, torch.Tensor]) -> None:
        stored[name] = stored[name].to(dtype)

    path = _rewrite_checkpoint(run_dir, convert)
    line = _refused(adbench("time", "--from", str(run_dir), "--out", str(tmp_path / "runs")), path)
    assert f"tensor {name!r} is {dtype}, the networks' torch.float32" in line and "converts none" in line


def test_a_genuine_checkpoint_still_loads(one_cell_run):
    """The control for the two above: the untouched checkpoint passes the same checks."""
    assert isinstance(L2Autoencoder.load(one_cell_run / CHECKPOINT), L2Autoencoder)
    assert np.all([t.dtype == torch.float32 for t in load_file(str(one_cell_run / CHECKPOINT)).values()])
