"""Preprocessing cache: loading a cached category against decoding its PNGs (compare the two means)."""

import shutil

import pytest

from adbench.data import cache
from adbench.data.formats.mvtec_ad import read_category
from adbench.detector import InputSpec

SPEC = InputSpec(64, 3)


@pytest.fixture
def washer(tiny_root):
    files = read_category(tiny_root, "washer", "object")
    return files, cache.describe(files)


@pytest.mark.benchmark(group="category-load")
def test_cold_decode(benchmark, washer):
    files, category = washer

    def decode_from_scratch():
        shutil.rmtree(cache.cache_root() / "tensors", ignore_errors=True)
        return cache.load_category(files, category, SPEC)

    tensors = benchmark(decode_from_scratch)
    assert len(tensors.test) == len(files.test)


@pytest.mark.benchmark(group="category-load")
def test_cache_hit(benchmark, washer):
    files, category = washer
    cache.load_category(files, category, SPEC)
    tensors = benchmark(cache.load_category, files, category, SPEC)
    assert len(tensors.test) == len(files.test)
