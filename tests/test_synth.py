import numpy as np
from PIL import Image

from adbench.data import mvtec
from adbench.data.formats.mvtec_ad import read_category
from adbench.data.layout import read_kinds
from adbench.data.synth import CATEGORIES, generate
from tests.conftest import TINY


def _files(root):
    return {path.relative_to(root): path.read_bytes() for path in sorted(root.rglob("*")) if path.is_file()}


def test_same_seed_gives_byte_identical_files(tiny_root, tmp_path):
    again = generate(tmp_path / "again", seed=0, size=TINY)
    assert _files(again) == _files(tiny_root)


def test_another_seed_gives_other_images(tiny_root, tmp_path):
    other = _files(generate(tmp_path / "other", seed=1, size=TINY))
    original = _files(tiny_root)
    assert other.keys() == original.keys()
    assert sum(other[name] != original[name] for name in original) > len(original) // 2


def test_layout_kinds_channels_and_masks(tiny_root):
    names = [category.name for category in CATEGORIES]
    kinds = read_kinds(tiny_root, names, {}, mvtec.KINDS)
    assert sorted(kinds.values()).count("texture") >= 2 and sorted(kinds.values()).count("object") >= 2
    modes = set()
    for name in names:
        files = read_category(tiny_root, name, kinds[name])
        modes.add(Image.open(files.train[0]).mode)
        defects = {item.defect for item in files.test if item.is_anomalous}
        assert len(defects) >= 2
        for item in files.test:
            if item.is_anomalous:
                mask = np.asarray(Image.open(item.masks[0]))
                assert mask.shape == (TINY.image_size, TINY.image_size)
                assert set(np.unique(mask)) == {0, 255}, f"{item.masks[0]} must mark some defect pixels"
    assert modes == {"L", "RGB"}
