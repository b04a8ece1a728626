"""adbench/weights: the registry of published weight files, their checked store, the download and the
`adbench weights` commands. Every test registers its own small entry (the registry is restored after
it) and stores into its own cache folder; downloads come from a server on 127.0.0.1."""

from __future__ import annotations

import functools
import hashlib
import http.server
import io
import os
import re
import threading
from collections.abc import Iterator
from pathlib import Path

import pytest
import torch
from rich.console import Console
from safetensors import safe_open
from safetensors.torch import save_file

from adbench.errors import AdbenchError
from adbench.weights import registry
from adbench.weights.download import fetch
from adbench.weights.registry import WeightFile, lookup, register
from adbench.weights.store import import_file, load, present, require, stored_path
from tests.helpers import adbench, one_line

SHAPES = {"conv.weight": (4, 3, 3, 3), "conv.bias": (4,)}


def tensors(seed: int = 0, shapes: dict[str, tuple[int, ...]] = SHAPES) -> dict[str, torch.Tensor]:
    generator = torch.Generator().manual_seed(seed)
    return {name: torch.randn(shape, generator=generator) for name, shape in shapes.items()}


def sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(autouse=True)
def cache(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A cache folder of the test's own, and a registry whose additions end with the test."""
    monkeypatch.setenv("ADBENCH_CACHE_DIR", str(tmp_path / "cache"))
    monkeypatch.setattr(registry, "WEIGHTS", dict(registry.WEIGHTS))
    return tmp_path / "cache"


@pytest.fixture
def source(tmp_path: Path) -> Path:
    """The publisher's file: a small state dict saved with torch.save."""
    path = tmp_path / "published" / "tiny-0123abcd.pth"
    path.parent.mkdir()
    torch.save(tensors(), path)
    return path


@pytest.fixture
def server(tmp_path: Path) -> Iterator[tuple[str, Path]]:
    """An HTTP server on 127.0.0.1: its address and the folder it serves."""
    served = tmp_path / "served"
    served.mkdir()

    class Quiet(http.server.SimpleHTTPRequestHandler):
        def log_message(self, format: str, *args: object) -> None:
            pass

    httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), functools.partial(Quiet, directory=str(served)))
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}", served
    finally:
        httpd.shutdown()
        httpd.server_close()
        thread.join()


def entry(source: Path, name: str = "tiny", **fields: object) -> WeightFile:
    """Register weights `name` for the file at `source`: its full sha256 and SHAPES unless `fields` say
    otherwise."""
    values: dict[str, object] = {
        "name": name,
        "description": "a tiny test network",
        "used_by": ("testmethod",),
        "url": f"http://127.0.0.1:9/{source.name}",
        "file_name": source.name,
        "format": "pytorch",
        "sha256": sha256(source),
        "expected": lambda: dict(SHAPES),
    } | fields
    return register(WeightFile(**values))  # type: ignore[arg-type]


def stored_files(cache: Path) -> list[str]:
    """Everything in the store's folder, hidden staging files and folders included."""
    folder = cache / "weights"
    return sorted(os.listdir(folder)) if folder.exists() else []


def assert_equal(loaded: dict[str, torch.Tensor], expected: dict[str, torch.Tensor]) -> None:
    assert loaded.keys() == expected.keys()
    for name, tensor in expected.items():
        assert torch.equal(loaded[name], tensor), name


def one_error_line(error: pytest.ExceptionInfo[AdbenchError]) -> str:
    message = str(error.value)
    assert "\n" not in message, message
    return message


def test_import_then_load_returns_the_tensors_and_records_the_source(source, cache):
    entry(source)
    assert present("tiny") is None
    stored = import_file("tiny", source)
    assert stored == cache / "weights" / "tiny.safetensors" == present("tiny") == stored_path("tiny")
    assert_equal(load("tiny"), tensors())
    with safe_open(str(stored), framework="pt") as opened:
        assert opened.metadata() == {
            "weights": "tiny",
            "source_file": "tiny-0123abcd.pth",
            "source_sha256": sha256(source),
        }
    assert stored_files(cache) == ["tiny.safetensors"]  # no temporary file left


def test_a_checkpoint_holding_a_state_dict_and_tied_tensors_is_stored(tmp_path):
    # Two names for one tensor (tied weights), which safetensors refuses to store as they are.
    weights = tensors()
    weights["tied.weight"] = weights["conv.weight"]
    path = tmp_path / "checkpoint.pth"
    torch.save({"state_dict": weights, "epoch": 3}, path)
    entry(path, expected=lambda: SHAPES | {"tied.weight": (4, 3, 3, 3)})
    import_file("tiny", path)
    assert_equal(load("tiny"), weights)


def test_a_safetensors_source_is_read_with_safetensors(tmp_path):
    path = tmp_path / "tiny.safetensors"
    save_file(tensors(), str(path))
    entry(path, format="safetensors")
    import_file("tiny", path)
    assert_equal(load("tiny"), tensors())


def test_a_file_whose_checksum_differs_is_refused_and_nothing_is_stored(source, cache):
    entry(source)
    published = sha256(source)
    torch.save(tensors(seed=1), source)  # same names and shapes, other values: only the checksum tells
    with pytest.raises(AdbenchError) as error:
        import_file("tiny", source)
    message = one_error_line(error)
    assert message.startswith(f"{source}: sha256 {sha256(source)}, but ")
    assert published in message
    assert present("tiny") is None and stored_files(cache) == []


def test_a_sha256_prefix_is_checked(source, cache):
    entry(source, sha256=sha256(source)[:8])
    import_file("tiny", source)
    assert_equal(load("tiny"), tensors())
    wrong = format(int(sha256(source)[:8], 16) ^ 1, "08x")
    entry(source, name="other", sha256=wrong)
    with pytest.raises(AdbenchError, match=rf"sha256 {sha256(source)}, but .*'s is {wrong}…"):
        import_file("other", source)
    assert present("other") is None


class _Payload:
    """Pickled as a call of os.mkdir: whoever unpickles it runs that call."""

    def __init__(self, marker: Path) -> None:
        self.marker = marker

    def __reduce__(self) -> tuple[object, tuple[str]]:
        return os.mkdir, (str(self.marker),)


def test_a_pickle_carrying_code_is_refused_without_running_it(tmp_path, cache):
    marker = tmp_path / "code-ran"
    path = tmp_path / "hostile.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "conv.bias": _Payload(marker)}, path)
    entry(path)
    with pytest.raises(AdbenchError) as error:
        import_file("tiny", path)
    message = one_error_line(error)
    assert message.startswith(f"{path}: holds code, not only tensors (")
    assert "refused" in message
    assert not marker.exists()
    assert present("tiny") is None and stored_files(cache) == []
    # The payload is real: a reader that runs what a pickle names would have made the marker.
    torch.load(path, weights_only=False)
    assert marker.is_dir()


@pytest.mark.parametrize(
    ("shapes", "difference"),
    [
        ({"conv.weight": (4, 3, 5, 5), "conv.bias": (4,)},
         "tensor 'conv.weight' has shape (4, 3, 3, 3), expected (4, 3, 5, 5)"),
        ({"conv.weight": (4, 3, 3, 3)}, "tensor 'conv.bias' is not one of tiny's"),
        (SHAPES | {"fc.weight": (2, 4)}, "tensor 'fc.weight' is missing"),
    ],
)  # fmt: skip
def test_tensors_of_other_names_or_shapes_are_refused(source, cache, shapes, difference):
    entry(source, expected=lambda: shapes)
    with pytest.raises(AdbenchError) as error:
        import_file("tiny", source)
    assert one_error_line(error).startswith(f"{source}: {difference}; not a tiny test network (tiny): ")
    assert present("tiny") is None and stored_files(cache) == []


def test_a_file_of_other_objects_than_tensors_is_refused(tmp_path):
    path = tmp_path / "mixed.pth"
    torch.save({"conv.weight": torch.zeros(4, 3, 3, 3), "epoch": 3}, path)
    entry(path)
    with pytest.raises(AdbenchError, match=r"entry 'epoch' is a int, not a named tensor"):
        import_file("tiny", path)
    (tmp_path / "garbage.pth").write_bytes(b"not a pickle at all")
    entry(tmp_path / "garbage.pth", name="garbage")
    with pytest.raises(AdbenchError, match=r"garbage.pth: not a PyTorch weights file \(Unsupported operand"):
        import_file("garbage", tmp_path / "garbage.pth")


def test_a_stored_file_changed_afterwards_is_refused_on_load(source):
    entry(source)
    stored = import_file("tiny", source)
    save_file({"conv.weight": torch.zeros(4, 3, 5, 5), "conv.bias": torch.zeros(4)}, str(stored))
    with pytest.raises(AdbenchError) as error:
        load("tiny")
    message = one_error_line(error)
    assert message.startswith(
        f"{stored}: tensor 'conv.weight' has shape (4, 3, 5, 5), expected (4, 3, 3, 3); "
    )
    assert "adbench weights import tiny FILE" in message
    stored.write_bytes(stored.read_bytes()[:40])  # cut short
    with pytest.raises(AdbenchError, match=rf"^{re.escape(str(stored))}: unreadable \(.*import tiny FILE"):
        load("tiny")


def test_require_names_the_missing_file_where_it_goes_and_both_commands(source, cache):
    entry(source)
    with pytest.raises(AdbenchError) as error:
        require(["tiny"])
    assert one_error_line(error) == (
        f"weights 'tiny' (tiny-0123abcd.pth) are not in {cache / 'weights'}: run `adbench weights fetch "
        "tiny`, or download http://127.0.0.1:9/tiny-0123abcd.pth yourself and run `adbench weights import "
        "tiny FILE`"
    )
    with pytest.raises(AdbenchError, match="are not in"):
        load("tiny")
    import_file("tiny", source)
    require(["tiny"])
    entry(source, name="by-hand", downloadable=False, how_to_get="a Google Drive page")
    with pytest.raises(AdbenchError) as error:
        require(["tiny", "by-hand"])
    message = one_error_line(error)
    assert message.startswith("weights 'by-hand' (tiny-0123abcd.pth) are not in ")
    assert message.endswith(
        "download tiny-0123abcd.pth from http://127.0.0.1:9/tiny-0123abcd.pth by hand (a Google Drive page) "
        "and run `adbench weights import by-hand FILE`"
    )


def test_fetch_downloads_checks_and_stores(source, server, cache):
    address, served = server
    (served / source.name).write_bytes(source.read_bytes())
    entry(source, url=f"{address}/{source.name}")
    console = Console(file=io.StringIO(), width=200)
    stored = fetch("tiny", console)
    assert stored == stored_path("tiny")
    assert_equal(load("tiny"), tensors())
    assert stored_files(cache) == ["tiny.safetensors"]  # the staging folder is gone
    assert f"checked and stored in {stored}" in console.file.getvalue()
    (served / source.name).unlink()  # present already: not downloaded again
    assert fetch("tiny", console) == stored
    assert "are already in" in console.file.getvalue()


def test_fetch_of_wrong_content_stores_nothing(source, server, cache):
    address, served = server
    torch.save(tensors(seed=1), served / source.name)
    entry(source, url=f"{address}/{source.name}")
    with pytest.raises(AdbenchError) as error:
        fetch("tiny", Console(file=io.StringIO()))
    assert (
        f"sha256 {sha256(served / source.name)}, but tiny-0123abcd.pth's is {sha256(source)}"
        in one_error_line(error)
    )
    assert present("tiny") is None and stored_files(cache) == []


def test_fetch_failures_name_the_url_and_the_import_command(source, server, cache):
    address, _ = server
    entry(source, url=f"{address}/absent.pth")
    with pytest.raises(AdbenchError) as error:
        fetch("tiny", Console(file=io.StringIO()))
    assert one_error_line(error) == (
        f"{address}/absent.pth: download failed (HTTP 404 File not found); try again, or download it "
        "yourself and run `adbench weights import tiny FILE`"
    )
    entry(source, name="by-hand", downloadable=False)
    with pytest.raises(
        AdbenchError, match=r"^weights 'by-hand' cannot be downloaded by adbench: download .* by hand"
    ):
        fetch("by-hand", Console(file=io.StringIO()))
    assert stored_files(cache) == []


def _row(stdout: str, name: str) -> list[str]:
    line = next(line for line in stdout.splitlines() if line.startswith(f"│ {name} "))
    return [cell.strip() for cell in line.strip("│").split("│")]


def test_the_weights_commands(source, server, tmp_path):
    address, served = server
    (served / source.name).write_bytes(source.read_bytes())
    entry(source, url=f"{address}/{source.name}", sha256=sha256(source)[:8])
    listed = adbench("weights", "list")
    assert listed.returncode == 0, listed.stderr
    assert _row(listed.stdout, "tiny") == [
        "tiny", "testmethod", "no", f"{address}/{source.name}",
        f"sha256 {sha256(source)[:8]}…, tensor names and shapes",
    ]  # fmt: skip
    assert _row(listed.stdout, "vgg19")[0] == "vgg19"

    imported = adbench("weights", "import", "tiny", str(source))
    assert imported.returncode == 0, imported.stderr
    assert f"checked and stored in {stored_path('tiny')}" in imported.stdout
    assert_equal(load("tiny"), tensors())
    assert _row(adbench("weights", "list").stdout, "tiny")[2] == str(stored_path("tiny"))

    fetched = adbench("weights", "fetch", "tiny", "--force")
    assert fetched.returncode == 0, fetched.stderr
    assert f"checked and stored in {stored_path('tiny')}" in fetched.stderr

    bad = tmp_path / "bad.pth"
    torch.save(tensors(seed=1), bad)
    refused = adbench("weights", "import", "tiny", str(bad))
    assert refused.returncode == 2
    assert one_line(refused.stderr).startswith(f"error: {bad}: sha256 {sha256(bad)}, but ")
    assert_equal(load("tiny"), tensors())  # the stored weights are kept

    unknown = adbench("weights", "fetch", "tinny")
    assert unknown.returncode == 2
    assert one_line(unknown.stderr).startswith("error: unknown weights 'tinny'. Did you mean 'tiny'? Valid: ")


def test_the_registry_refuses_a_second_entry_under_a_taken_name(source):
    first = entry(source)
    assert register(first) is first and lookup("tiny") is first  # the same entry again is harmless
    with pytest.raises(ValueError, match="registered already"):
        entry(source, description="another network")
    with pytest.raises(ValueError, match="cannot be a file name"):
        entry(source, name="../up")
    with pytest.raises(AdbenchError, match=r"^unknown weights 'vgg91'. Did you mean 'vgg19'\?"):
        lookup("vgg91")


def test_vgg19_expects_torchvisions_tensors():
    vgg19 = lookup("vgg19")
    assert vgg19.url == "https://download.pytorch.org/models/vgg19-dcbb9e9d.pth"
    assert vgg19.sha256 == "dcbb9e9d" and vgg19.format == "pytorch" and vgg19.used_by == ("utad",)
    assert vgg19.expected is not None
    shapes = vgg19.expected()
    assert len(shapes) == 38  # 16 convolutions and 3 linear layers, a weight and a bias each
    assert shapes["features.0.weight"] == (64, 3, 3, 3)
    assert shapes["features.2.weight"] == (64, 64, 3, 3)
    assert shapes["features.5.weight"] == (128, 64, 3, 3)  # after the first pool
    assert shapes["features.34.weight"] == (512, 512, 3, 3)
    assert shapes["features.34.bias"] == (512,)
    assert shapes["classifier.0.weight"] == (4096, 25088)
    assert shapes["classifier.3.weight"] == (4096, 4096)
    assert shapes["classifier.6.weight"] == (1000, 4096)
    assert "features.36.weight" not in shapes  # the last pool
