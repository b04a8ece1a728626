"""The interface every dataset format implements, and the folder helpers they share."""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Mapping
from pathlib import Path
from typing import ClassVar

from adbench.data.layout import CategoryFiles
from adbench.detector import CategoryKind


class DatasetFormat(ABC):
    """A publisher's folder layout: how to recognise its root, its categories and each one's files."""

    name: ClassVar[str]  # the --format value
    title: ClassVar[str]  # the dataset's name as its publisher writes it
    expects: ClassVar[str]  # the layout in a few words, for the message on an unrecognised folder
    # Kinds of the publisher's categories; ROOT/categories.toml and --kinds override them.
    kinds: ClassVar[Mapping[str, CategoryKind]] = {}
    # The publisher's categories whose images stay defect-free when rotated; categories.toml overrides.
    rotation_invariant: ClassVar[frozenset[str]] = frozenset()

    @abstractmethod
    def recognises(self, root: Path) -> bool:
        """Whether `root` holds this format's signature (cheap: folder and file names only)."""

    def categories(self, root: Path) -> list[str]:
        """The category names under `root`, sorted: by default, its folders."""
        return [folder.name for folder in category_dirs(root)]

    @abstractmethod
    def read_category(self, root: Path, name: str, kind: CategoryKind) -> CategoryFiles:
        """One category's files by split, cross-checked; AdbenchError naming the first problem."""


def category_dirs(root: Path) -> list[Path]:
    """The folders directly under `root`, sorted by name; hidden ones (.git, .DS_Store) skipped."""
    return sorted(p for p in root.iterdir() if p.is_dir() and not p.name.startswith("."))
