"""adbench/run/folder.py: the manifest as typed records, its version, and the defaults of older runs."""

import json
import shutil
from pathlib import Path

import pytest

from adbench.errors import AdbenchError
from adbench.run.folder import MANIFEST, MANIFEST_VERSION, CellRecord, Manifest, load_run, write_manifest

OLD_RUN = Path(__file__).parent / "fixtures" / "run-made-by-4dd029d"


def test_a_run_written_before_the_version_reads_as_version_1_with_its_cells_typed():
    manifest = Manifest.read(OLD_RUN)
    assert manifest.version == 1 and manifest.status == "finished" and manifest.kernels == "native"
    assert [cell.key for cell in manifest.cells] == [
        ("anogan", "weave", 0),
        ("anogan", "weave", 1),
        ("anogan", "pin", 0),
        ("anogan", "pin", 1),
    ]
    cell = manifest.cells[0]
    assert (cell.inference_kind, cell.steps, cell.batch_size, cell.trained) == ("iterative", 10, 8, True)
    assert cell.folder == Path("cells/anogan/weave/seed0")
    assert set(cell.timings) == {"fit", "latency", "throughput"} and cell.contention() == {}


def test_writing_a_read_manifest_gives_back_the_same_document(tmp_path):
    run_dir = Path(shutil.copytree(OLD_RUN, tmp_path / "run"))
    before = json.loads((run_dir / MANIFEST).read_text())
    write_manifest(run_dir, Manifest.read(run_dir))
    assert json.loads((run_dir / MANIFEST).read_text()) == before  # no version added to an old run


def test_a_new_manifest_records_its_version_and_old_defaults_fill_what_old_runs_lack(tmp_path):
    manifest = Manifest.new("r", "2026-12-06T00:00:00", {"budget": "smoke"}, "/data", "visa", "cpu", {})
    tmp_path.joinpath("r").mkdir()
    write_manifest(tmp_path / "r", manifest)
    document = json.loads((tmp_path / "r" / MANIFEST).read_text())
    assert document["manifest_version"] == MANIFEST_VERSION == 2
    assert document["status"] == "running" and document["cells"] == []
    read = Manifest.read(tmp_path / "r")
    assert read.config["pixel_resolution"] == "input"  # a config without the option: runs before it
    assert read.kernels == "native" and read.torch_threads is None
    del document["dataset_format"], document["status"]
    (tmp_path / "r" / MANIFEST).write_text(json.dumps(document))
    assert (Manifest.read(tmp_path / "r").dataset_format, Manifest.read(tmp_path / "r").status) == (
        "mvtec_ad",
        "finished",
    )


@pytest.mark.parametrize(
    ("edit", "message"),
    [
        (lambda m: m.update(manifest_version=3), "manifest_version 3 is none this adbench reads (1 to 2)"),
        (lambda m: m.update(manifest_version=True), "manifest_version is true, not an integer"),
        (lambda m: m.update(resumed_at=5), "resumed_at is 5, not a list"),
        (lambda m: m.update(environment=[]), "environment is [], not an object"),
        (lambda m: m["cells"][0].update(training_budget="x"), 'training_budget is "x", not an object'),
        (lambda m: m["cells"][0].update(steps=1.5), "cell 0: steps is 1.5, not an integer"),
        (lambda m: m["cells"][1]["timing"].update(measurements=[1]), "cell 1: timing: measurements is [1]"),
        (lambda m: m["cells"][0]["timing"]["measurements"].update(fit=0), "fit is 0, not an object"),
    ],
)
def test_a_manifest_changed_outside_adbench_is_one_line_naming_the_file(tmp_path, edit, message):
    run_dir = Path(shutil.copytree(OLD_RUN, tmp_path / "run"))
    document = json.loads((run_dir / MANIFEST).read_text())
    edit(document)
    (run_dir / MANIFEST).write_text(json.dumps(document))
    with pytest.raises(AdbenchError) as raised:
        load_run(run_dir)
    assert str(raised.value).startswith(str(run_dir / MANIFEST)) and message in str(raised.value)
    assert "\n" not in str(raised.value)


def test_a_cell_record_says_which_timings_were_contended():
    entry = {
        "method": "l2ae",
        "category": "pin",
        "seed": 3,
        "training_budget": None,
        "timing": {"measurements": {"fit": {"contended": None}, "latency": {"contended": "2 busy"}}},
    }
    record = CellRecord.of(entry)
    assert record.contention() == {"latency": "2 busy"} and not record.trained and record.steps is None
    assert record.with_entry(checkpoint="x").entry == entry | {"checkpoint": "x"}
