"""Hostile and careless use of run folders (issue #15): no network connection chosen by a file, resume
that trusts no stored path, nothing deleted or overwritten through links, one process per run folder,
SIGTERM as an interruption, every data problem before any training."""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import subprocess
import sys
from pathlib import Path

import pytest
import torch
from PIL import Image

from adbench.kernels import PORTABLE_VARIABLE, kernels_in_use
from adbench.results import MANIFEST
from adbench.run_lock import LOCK_FILE, _holder, run_lock
from tests.helpers import adbench, one_line, snapshot, wait_until
from tests.test_evaluate import write_maps

CHECKPOINT = Path("cells/l2ae/washer/seed0/checkpoint.safetensors")


def _copy(run_dir: Path, where: Path) -> Path:
    return Path(shutil.copytree(run_dir, where, symlinks=True))


def _edit_manifest(run_dir: Path, edit) -> None:
    path = run_dir / MANIFEST
    manifest = json.loads(path.read_text())
    edit(manifest)
    path.write_text(json.dumps(manifest))


def _smoke(data: Path, out: Path, *args: str, cwd: Path | None = None):
    return adbench(
        "run", "--methods", "l2ae", "--budget", "smoke", "--data", str(data), "--out", str(out), *args,
        cwd=cwd,
    )  # fmt: skip


# --- 1. no scheduler address from a file ---------------------------------------------------------


@pytest.fixture
def listener():
    """A local TCP port standing in for a Dask scheduler; it records whether anyone connected."""
    server = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    server.bind(("127.0.0.1", 0))
    server.listen(8)
    server.settimeout(0.5)
    yield f"tcp://127.0.0.1:{server.getsockname()[1]}", server
    server.close()


def _connected(server: socket.socket) -> bool:
    try:
        server.accept()[0].close()
    except TimeoutError:
        return False
    return True


def test_a_scheduler_named_in_a_manifest_is_refused_without_connecting(one_cell_run, tmp_path, listener):
    address, server = listener
    run_dir = _copy(one_cell_run, tmp_path / "one")

    def point_at_scheduler(manifest):
        manifest["config"] |= {"executor": "dask", "scheduler": address, "workers": None}
        manifest["cells"] = []  # so that resuming has cells to send

    _edit_manifest(run_dir, point_at_scheduler)
    before = snapshot(run_dir)
    for command in (
        ["--resume", str(run_dir)],
        ["--config", str(run_dir / MANIFEST), "--out", str(tmp_path)],
    ):
        result = adbench("run", *command)
        assert result.returncode == 2, result.stderr
        line = one_line(result.stderr)
        assert address in line and f"pass --scheduler {address}" in line, line
    assert not _connected(server), "no connection may be attempted to an address read from a file"
    assert snapshot(run_dir) == before


def test_a_scheduler_named_in_a_grid_file_is_refused_without_connecting(tiny_root, tmp_path, listener):
    address, server = listener
    grid = tmp_path / "grid.toml"
    grid.write_text(
        f'methods = ["l2ae"]\nall_categories = true\nexecutor = "dask"\nscheduler = "{address}"\n'
    )
    result = adbench("run", "--config", str(grid), "--data", str(tiny_root), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert f"{grid}: names the Dask scheduler" in one_line(result.stderr)
    assert not _connected(server) and not (tmp_path / "runs").exists()


# --- 2. resume trusts no stored path ---------------------------------------------------------------


def _kept_everything(result: subprocess.CompletedProcess[str], run_dir: Path, checkpoint: bytes) -> None:
    assert result.returncode == 0, result.stderr
    assert "kept l2ae/washer/seed0" in result.stderr and "fit" not in result.stderr
    assert (run_dir / CHECKPOINT).read_bytes() == checkpoint, "a kept cell is not retrained"


def test_resume_from_another_folder_and_of_a_moved_run_keeps_every_cell(tiny_root, tmp_path):
    made_in = tmp_path / "project"
    made_in.mkdir()
    assert (
        _smoke(tiny_root, Path("runs"), "--categories", "washer", "--name", "r", cwd=made_in).returncode == 0
    )
    run_dir = made_in / "runs" / "r"
    stored = json.loads((run_dir / MANIFEST).read_text())["cells"][0]["checkpoint"]
    assert stored == str(CHECKPOINT), "checkpoint paths are stored relative to the run folder"
    checkpoint = (run_dir / CHECKPOINT).read_bytes()

    elsewhere = tmp_path / "elsewhere"
    elsewhere.mkdir()
    _kept_everything(adbench("run", "--resume", str(run_dir), cwd=elsewhere), run_dir, checkpoint)
    moved = made_in.rename(tmp_path / "moved") / "runs" / "r"
    _kept_everything(adbench("run", "--resume", str(moved), cwd=elsewhere), moved, checkpoint)
    _kept_everything(adbench("run", "--resume", ".", cwd=moved), moved, checkpoint)


def test_old_absolute_checkpoint_paths_map_onto_the_run_folder(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    checkpoint = (run_dir / CHECKPOINT).read_bytes()
    _edit_manifest(run_dir, lambda m: m["cells"][0].update(checkpoint=f"runs/one/{CHECKPOINT}"))
    _kept_everything(adbench("run", "--resume", str(run_dir), cwd=tmp_path), run_dir, checkpoint)
    assert json.loads((run_dir / MANIFEST).read_text())["cells"][0]["checkpoint"] == str(CHECKPOINT)


def test_a_cell_whose_checkpoint_is_in_another_folder_is_redone(one_cell_run, tmp_path):
    other = _copy(one_cell_run, tmp_path / "other")
    run_dir = _copy(one_cell_run, tmp_path / "one")
    (run_dir / CHECKPOINT).unlink()
    _edit_manifest(run_dir, lambda m: m["cells"][0].update(checkpoint=str(other / CHECKPOINT)))
    other_before = snapshot(other)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert "kept" not in result.stderr and "done l2ae/washer/seed0" in result.stderr
    assert (run_dir / CHECKPOINT).is_file() and snapshot(other) == other_before


# --- 3. nothing deleted or written through links ---------------------------------------------------


@pytest.mark.parametrize("link", ["cells/l2ae", "cells/l2ae/washer/seed0"])
def test_a_symlinked_cell_folder_leaves_its_target_untouched(one_cell_run, tmp_path, link):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    victim = tmp_path / "victim"
    shutil.move(run_dir / link, victim)  # the target holds what the link replaces, and more
    (victim / "precious.txt").write_text("someone else's file")
    (run_dir / link).symlink_to(victim, target_is_directory=True)
    _edit_manifest(run_dir, lambda m: m.update(cells=[]))  # the cell is unfinished: resuming redoes it
    before = snapshot(victim)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{run_dir / link}: a symbolic link inside a run folder" in one_line(result.stderr)
    assert snapshot(victim) == before


def _forget_the_cell(run_dir: Path, environment: dict[str, object]) -> None:
    """The run as if killed before its one cell was recorded, its environment's entries replaced."""
    manifest = json.loads((run_dir / MANIFEST).read_text())
    manifest["cells"], manifest["status"] = [], "running"
    manifest["environment"] |= environment
    (run_dir / MANIFEST).write_text(json.dumps(manifest))


def test_resume_computes_at_the_runs_own_thread_count(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    other = 1 if torch.get_num_threads() > 1 else 2
    _forget_the_cell(run_dir, {"torch_threads": other})
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    manifest = json.loads((run_dir / MANIFEST).read_text())
    assert [cell["torch_threads"] for cell in manifest["cells"]] == [other]
    assert manifest["environment"]["torch_threads"] == other


def test_resume_with_other_kernels_than_the_run_is_one_line_and_changes_nothing(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    other = "native" if kernels_in_use() == "portable" else "portable"
    _forget_the_cell(run_dir, {"kernels": other})
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert one_line(result.stderr).startswith(
        f"error: {run_dir / MANIFEST}: the run computed with {other} kernels, this process with "
        f"{kernels_in_use()}; resume it with {PORTABLE_VARIABLE}"
    )
    assert snapshot(run_dir) == before


def test_resume_removes_a_killed_writers_temporary_files(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    stale = [run_dir / ".results.csv.k2j3.tmp", run_dir / CHECKPOINT.parent / ".scores.csv.x8a.tmp"]
    for path in stale:
        path.write_text("half a file")
    assert adbench("run", "--resume", str(run_dir)).returncode == 0
    assert not any(path.exists() for path in stale)


def test_report_writes_no_file_through_a_link_and_leaves_nothing_when_refused(one_cell_run, tmp_path):
    victim = tmp_path / "victim.png"
    victim.write_bytes(b"someone else's picture")
    reports = tmp_path / "reports"
    reports.mkdir()
    (reports / "r-roc.png").symlink_to(victim)
    result = adbench("report", str(one_cell_run), "--out", str(reports / "r.md"))
    assert result.returncode == 2
    assert f"{reports / 'r-roc.png'}: already exists and is never overwritten" in one_line(result.stderr)
    assert victim.read_bytes() == b"someone else's picture"
    assert sorted(path.name for path in reports.iterdir()) == ["r-roc.png"], "nothing else is left behind"

    (reports / "r-roc.png").unlink()
    (reports / "r-heatmap.png").write_bytes(b"an older figure")
    assert adbench("report", str(one_cell_run), "--out", str(reports / "r.md")).returncode == 2
    assert (reports / "r-heatmap.png").read_bytes() == b"an older figure"
    assert sorted(path.name for path in reports.iterdir()) == ["r-heatmap.png"]


# --- 4. one process per run folder ---------------------------------------------------------------


def test_a_second_process_is_refused_while_the_first_holds_the_run(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    with run_lock(run_dir):
        before = snapshot(run_dir)
        result = adbench("run", "--resume", str(run_dir), fresh=True)
        assert result.returncode == 2
        line = one_line(result.stderr)
        assert f"in use by process {os.getpid()} on {socket.gethostname()}" in line, line
        assert snapshot(run_dir) == before
    assert adbench("run", "--resume", str(run_dir)).returncode == 0, "the lock ends with its holder"


def test_a_lock_left_by_a_dead_process_is_taken_over(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    dead = subprocess.run(
        [sys.executable, "-c", "import os; print(os.getpid())"], capture_output=True, text=True
    )
    (run_dir / LOCK_FILE).write_text(
        " " + json.dumps({"pid": int(dead.stdout), "host": socket.gethostname()})
    )
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 0, result.stderr
    assert not (run_dir / LOCK_FILE).exists(), "a run that ends removes its lock file"


@pytest.mark.parametrize(
    "content",
    [b" " + b"[" * 100_000 + b"]" * 100_000, b" \xff\xfe", b' ["pid"]', b' {"pid": 1}', b"", b' "host"'],
    ids=["deep", "not-utf8", "list", "no-host", "empty", "string"],
)
def test_a_held_lock_whose_holder_cannot_be_read_is_named_another_process(tmp_path, content):
    lock = tmp_path / LOCK_FILE
    lock.write_bytes(content)
    assert _holder(lock) == "another process"


@pytest.mark.parametrize("planted", ["folder", "link"])
def test_a_lock_file_that_is_not_a_file_is_one_line(one_cell_run, tmp_path, planted):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    victim = tmp_path / "victim.txt"
    victim.write_text("someone else's file")
    if planted == "folder":
        (run_dir / LOCK_FILE).mkdir()
    else:
        (run_dir / LOCK_FILE).symlink_to(victim)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{run_dir / LOCK_FILE}: a {'folder' if planted == 'folder' else 'symbolic link'}" in one_line(
        result.stderr
    )
    assert victim.read_text() == "someone else's file"


# --- 5. SIGTERM is an interruption ---------------------------------------------------------------


def test_sigterm_leaves_the_run_interrupted(tiny_root, tmp_path):
    command = [sys.executable, "-c", "from adbench.cli import main; main()", "run", "--methods", "l2ae"]
    command += ["--budget", "smoke", "--all-categories", "--data", str(tiny_root), "--out", str(tmp_path)]
    process = subprocess.Popen(
        [*command, "--name", "t"], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True
    )
    manifest_path = tmp_path / "t" / MANIFEST
    wait_until(manifest_path.exists, process, "the run wrote its manifest")
    process.send_signal(signal.SIGTERM)
    _, stderr = process.communicate(timeout=600)
    assert process.returncode == 128 + signal.SIGTERM, stderr
    assert (
        f"interrupted: finished cells are kept in {tmp_path / 't'};" in stderr and "Traceback" not in stderr
    )
    assert f"`adbench run --resume {tmp_path / 't'}` finishes it" in stderr, "the folder to resume is named"
    assert json.loads(manifest_path.read_text())["status"] == "interrupted"


# --- 7. every data problem before any training -----------------------------------------------------


def _no_run_folder(out: Path) -> bool:
    return not out.exists() or not any(out.iterdir())


def test_a_truncated_image_in_the_last_category_stops_the_run_before_any_fit(dataset_copy, tmp_path):
    broken = dataset_copy / "washer" / "test" / "good" / "003.png"  # washer runs last (objects, a-z)
    broken.write_bytes(broken.read_bytes()[:300])
    result = _smoke(dataset_copy, tmp_path / "runs", "--categories", "pin,washer")
    assert result.returncode == 2
    assert f"{broken}: unreadable or truncated image" in one_line(result.stderr)
    assert _no_run_folder(tmp_path / "runs"), "nothing trained, no run folder"


def test_an_image_far_smaller_than_the_input_is_refused(dataset_copy, tmp_path):
    tiny = dataset_copy / "washer" / "train" / "good" / "004.png"
    Image.new("RGB", (1, 1)).save(tiny)
    result = _smoke(dataset_copy, tmp_path / "runs", "--categories", "washer")
    assert result.returncode == 2
    assert f"{tiny}: 1x1 pixels, far too small" in one_line(result.stderr)
    assert _no_run_folder(tmp_path / "runs")


def test_a_colour_image_in_a_grayscale_category_is_named(dataset_copy, tmp_path):
    colour = dataset_copy / "pin" / "test" / "good" / "001.png"
    with Image.open(colour) as gray:
        assert gray.mode == "L"
        gray.convert("RGB").save(colour)
    result = _smoke(dataset_copy, tmp_path / "runs", "--categories", "pin")
    assert result.returncode == 2
    assert f"{colour}: a colour image (RGB) in a grayscale category" in one_line(result.stderr)


# --- 10-12. careless use ---------------------------------------------------------------------------


def test_dask_executor_without_dask_is_one_line_and_creates_nothing(tiny_root, tmp_path):
    hide_dask = "import sys; sys.modules['distributed'] = None; from adbench.cli import main; main()"
    out = tmp_path / "runs"
    result = subprocess.run(
        [
            sys.executable,
            "-c",
            hide_dask,
            "run",
            "--methods",
            "l2ae",
            "--categories",
            "pin",
            "--data",
            str(tiny_root),
            "--out",
            str(out),
            "--executor",
            "dask",
            "--workers",
            "1",
        ],
        capture_output=True,
        text=True,
    )
    assert result.returncode == 2
    assert "pip install 'adbench-harness[dask]'" in one_line(result.stderr)
    assert not out.exists()


def test_data_pointing_at_a_category_folder_says_to_pass_its_parent(tiny_root, tmp_path):
    result = _smoke(tiny_root / "pin", tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{tiny_root / 'pin'}: a category folder" in one_line(result.stderr)
    assert f"pass its parent {tiny_root}" in result.stderr


def test_a_dataset_root_that_is_a_file_says_so(tmp_path):
    file = tmp_path / "data.zip"
    file.write_bytes(b"PK")
    result = _smoke(file, tmp_path / "runs", "--all-categories")
    assert result.returncode == 2
    assert f"{file}: a file, not a folder" in one_line(result.stderr)


def test_a_run_that_fails_before_its_first_cell_removes_its_folder(tiny_root, tmp_path, monkeypatch):
    from adbench.config import RunConfig
    from adbench.errors import AdbenchError
    from adbench.runner import run
    from adbench_methods.autoencoder.detector import L2Autoencoder

    def failing_fit(self, images, budget, on_step=None):
        raise AdbenchError("the method refused this data")

    monkeypatch.setattr(L2Autoencoder, "fit", failing_fit)
    config = RunConfig(
        methods=("l2ae",), categories=("pin",), data=tiny_root, budget="smoke", out=tmp_path, run_name="r"
    )
    with pytest.raises(AdbenchError, match="refused this data"):
        run(config)
    assert not (tmp_path / "r").exists(), "an empty run folder would block its --name"


def test_a_nul_byte_in_a_grid_files_name_is_one_line(tiny_root, tmp_path):
    """A command line cannot carry a NUL byte, but a grid file can (TOML's \\u0000)."""
    grid = tmp_path / "grid.toml"
    grid.write_text('methods = ["l2ae"]\ncategories = ["pin"]\nname = "a\\u0000b"\n')
    result = adbench("run", "--config", str(grid), "--data", str(tiny_root), "--out", str(tmp_path / "runs"))
    assert result.returncode == 2
    assert "--name 'a\\x00b': contains a NUL byte" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("flags", "message"),
    [
        (("--repeats", "1000000000"), "--repeats 1000000000: must be from 1 to 1,000"),
        (("--executor", "dask", "--workers", "100000"), "--workers 100000: must be from 1 to"),
        (("--name", "n" * 256), "it is 256 bytes long, more than a file name holds (255)"),
    ],
)
def test_unbounded_counts_and_names_are_refused(tiny_root, tmp_path, flags, message):
    result = _smoke(tiny_root, tmp_path / "runs", "--categories", "pin", *flags)
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


def test_a_thousand_and_one_seeds_are_refused(tiny_root, tmp_path):
    seeds = ",".join(map(str, range(1001)))
    result = _smoke(tiny_root, tmp_path / "runs", "--categories", "pin", "--seeds", seeds)
    assert result.returncode == 2
    assert "1,001 seeds; a grid takes at most 1,000" in one_line(result.stderr)
    assert not (tmp_path / "runs").exists()


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.pop("cells"), "no list of cells"),
        (lambda m: m["cells"][0].update(seed="zero"), "cell 0 does not name a method, a category and a seed"),
        (lambda m: m["cells"][0].update(seed=-1), "cell 0 does not name"),
    ],
)
def test_a_damaged_manifest_is_one_line_and_left_as_it_is(one_cell_run, tmp_path, edit, message):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    _edit_manifest(run_dir, edit)
    before = snapshot(run_dir)
    result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert message in one_line(result.stderr)
    assert snapshot(run_dir) == before


def test_a_cell_entry_without_its_checkpoint_path_is_still_kept(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    checkpoint = (run_dir / CHECKPOINT).read_bytes()
    _edit_manifest(run_dir, lambda m: m["cells"][0].pop("checkpoint"))
    _kept_everything(adbench("run", "--resume", str(run_dir)), run_dir, checkpoint)


@pytest.mark.parametrize("which", ["grid file", "manifest"])
def test_non_utf8_grid_files_and_manifests_are_one_line(one_cell_run, tmp_path, which):
    if which == "grid file":
        target = tmp_path / "grid.toml"
        target.write_bytes(b'methods = ["l2ae"]\n# caf\xe9\n')
        result = adbench("run", "--config", str(target))
    else:
        run_dir = _copy(one_cell_run, tmp_path / "one")
        target = run_dir / MANIFEST
        target.write_bytes(target.read_bytes().replace(b'"status"', b'"st\xe9tus"'))
        result = adbench("run", "--resume", str(run_dir))
    assert result.returncode == 2
    assert f"{target}: not a" in one_line(result.stderr) and "is not UTF-8 text" in result.stderr


def _unwritable_folder() -> Path:
    """A folder no one may write, root included (tests may run as root, which permissions do not stop)."""
    folder = Path("/sys")
    try:
        (folder / "adbench-probe").mkdir()
    except OSError:
        return folder
    (folder / "adbench-probe").rmdir()
    pytest.skip("no unwritable folder on this machine")


@pytest.mark.parametrize("command", ["run", "report", "evaluate", "compare --update", "data synth"])
def test_an_output_the_user_may_not_write_is_one_line(one_cell_run, tiny_root, tmp_path, command):
    folder = _unwritable_folder()
    arguments = {
        "run": ["run", "--methods", "l2ae", "--budget", "smoke", "--data", str(tiny_root),
                "--categories", "pin", "--out", str(folder)],
        "report": ["report", str(one_cell_run), "--out", str(folder / "r.md")],
        "evaluate": ["evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(tmp_path),
                     "--out", str(folder / "m.csv")],
        "compare --update": ["compare", str(one_cell_run), "--baseline", str(folder / "b.json"), "--update"],
        "data synth": ["data", "synth", "--out", str(folder / "synth")],
    }[command]  # fmt: skip
    if command == "evaluate":
        write_maps(tiny_root, tmp_path, "pin", ".npy", seed=0)
        arguments += ["--categories", "pin"]
    result = adbench(*arguments)
    assert result.returncode == 2, result.stderr
    line = one_line(result.stderr)
    assert str(folder) in line and ("permission denied" in line.lower() or "not permitted" in line.lower())


def test_a_full_disk_while_saving_a_checkpoint_is_one_line(tmp_path, monkeypatch):
    """safetensors reports the full disk as text, not as an OSError."""
    import safetensors.torch
    from safetensors import SafetensorError

    import adbench.detector
    from adbench.errors import AdbenchError
    from adbench_methods.autoencoder.detector import L2Autoencoder

    def full_disk(*args, **kwargs):
        raise SafetensorError("Error while serializing: I/O error: No space left on device (os error 28)")

    monkeypatch.setattr(adbench.detector, "save_file", full_disk)
    assert safetensors.torch.save_file is not full_disk
    detector = L2Autoencoder(L2Autoencoder.default_params(_pin(), "smoke"))
    with pytest.raises(AdbenchError, match=r"checkpoint\.safetensors: not written, no space left on device"):
        detector.save(tmp_path / "checkpoint.safetensors")
    assert list(tmp_path.iterdir()) == [], "no temporary file is left behind"


def _pin():
    from adbench.detector import CategorySpec

    return CategorySpec("pin", "object", 1)


def test_report_refuses_a_stray_cell_folder_and_a_damaged_scores_file(one_cell_run, tmp_path):
    run_dir = _copy(one_cell_run, tmp_path / "one")
    stray = run_dir / "cells" / "l2ae" / "washer" / "seedX"
    shutil.copytree(run_dir / CHECKPOINT.parent, stray)
    result = adbench("report", str(run_dir), "--out", str(tmp_path / "a.md"))
    assert result.returncode == 2 and f"{stray}: not a cell folder" in one_line(result.stderr)
    shutil.rmtree(stray)
    scores = run_dir / CHECKPOINT.parent / "scores.csv"
    for damaged in ("", "image,defect\nx,good\n"):
        scores.write_text(damaged)
        result = adbench("report", str(run_dir), "--out", str(tmp_path / "b.md"))
        assert result.returncode == 2 and f"{scores}:" in one_line(result.stderr)
        assert not (tmp_path / "b.md").exists()


@pytest.mark.parametrize("command", ["evaluate", "data synth"])
def test_an_output_that_is_a_dangling_link_is_never_replaced(tiny_root, tmp_path, command):
    link = tmp_path / "out"
    link.symlink_to(tmp_path / "nowhere")
    if command == "evaluate":
        write_maps(tiny_root, tmp_path / "maps", "pin", ".npy", seed=0)
        arguments = ["evaluate", "--dataset", str(tiny_root), "--anomaly-maps", str(tmp_path / "maps")]
        arguments += ["--categories", "pin", "--out", str(link)]
    else:
        arguments = ["data", "synth", "--out", str(link)]
    result = adbench(*arguments)
    assert result.returncode == 2
    assert f"{link}: already exists and is never overwritten" in one_line(result.stderr)
    assert link.is_symlink() and not (tmp_path / "nowhere").exists()
