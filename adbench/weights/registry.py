"""The pretrained weight files adbench knows: where each is published, its checksum and what it holds.

Methods (ours and plugins) add theirs with `register`; `adbench weights list` shows them all.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from typing import Literal

from adbench.errors import AdbenchError, unknown_name_message
from adbench.names import name_problem

Shapes = dict[str, tuple[int, ...]]


@dataclass(frozen=True)
class WeightFile:
    """One published weights file.

    `sha256` is the file's full digest or a prefix of it: torchvision's file names carry only the first
    8 hex digits of theirs, so a prefix is all that is known for them. `expected` gives the tensor names
    and shapes the file must hold; it is a function so that nothing is computed until a file is checked.
    An entry that is not `downloadable` (a file behind a web page, e.g. Google Drive) is imported by hand;
    `how_to_get` then tells the user how to reach it.
    """

    name: str
    description: str
    used_by: tuple[str, ...]
    url: str
    file_name: str
    format: Literal["pytorch", "safetensors"]
    sha256: str | None = None
    expected: Callable[[], Shapes] | None = None
    downloadable: bool = True
    how_to_get: str = ""

    def __post_init__(self) -> None:
        # Entries come from code (ours or a plugin's), so a bad one is a bug, not the user's to fix.
        for what, value in (("name", self.name), ("file_name", self.file_name)):
            if problem := name_problem(value):
                raise ValueError(f"weights {what} {value!r} cannot be a file name: {problem}")
        if self.sha256 is not None and not re.fullmatch(r"[0-9a-f]{8,64}", self.sha256):
            raise ValueError(f"weights {self.name!r}: sha256 must be 8 to 64 lowercase hex digits")

    def difference(self, shapes: Mapping[str, tuple[int, ...]]) -> str | None:
        """The first way (in name order) that `shapes` differs from the expected tensors, in words; None
        when they agree or nothing is expected."""
        if self.expected is None:
            return None
        expected = self.expected()
        for tensor in sorted(expected.keys() | shapes.keys()):
            if tensor not in shapes:
                return f"tensor {tensor!r} is missing"
            if tensor not in expected:
                return f"tensor {tensor!r} is not one of {self.name}'s"
            if tuple(shapes[tensor]) != expected[tensor]:
                return f"tensor {tensor!r} has shape {tuple(shapes[tensor])}, expected {expected[tensor]}"
        return None


WEIGHTS: dict[str, WeightFile] = {}


def register(weight_file: WeightFile) -> WeightFile:
    """Add `weight_file` to the registry; registering the same entry again (a module imported twice) is
    harmless, another entry under a taken name is a bug."""
    known = WEIGHTS.get(weight_file.name)
    if known is not None and known != weight_file:
        raise ValueError(f"weights {weight_file.name!r} are registered already, as {known.description!r}")
    WEIGHTS[weight_file.name] = weight_file
    return weight_file


def lookup(name: str) -> WeightFile:
    try:
        return WEIGHTS[name]
    except KeyError:
        raise AdbenchError(unknown_name_message("weights", name, list(WEIGHTS))) from None


# VGG-19's convolutions ("E" in torchvision's vgg.py): output channels, "M" a 2×2 max pool.
VGG19_LAYERS: tuple[int | str, ...] = (
    64, 64, "M", 128, 128, "M", 256, 256, 256, 256, "M", 512, 512, 512, 512, "M", 512, 512, 512, 512, "M",
)  # fmt: skip


def vgg19_shapes() -> Shapes:
    """The tensors of torchvision's VGG-19 (without batch norm), named as its state dict names them."""
    shapes: Shapes = {}
    index, channels = 0, 3
    for layer in VGG19_LAYERS:
        if isinstance(layer, str):  # a max pool: a layer without tensors
            index += 1
            continue
        shapes[f"features.{index}.weight"] = (layer, channels, 3, 3)
        shapes[f"features.{index}.bias"] = (layer,)
        index += 2  # torchvision's nn.Sequential holds each convolution's ReLU as a layer of its own
        channels = layer
    # The classifier's Linear layers sit at 0, 3 and 6, between ReLU and Dropout layers; 25088 = 512·7·7.
    for position, (inputs, outputs) in enumerate(((512 * 7 * 7, 4096), (4096, 4096), (4096, 1000))):
        shapes[f"classifier.{3 * position}.weight"] = (outputs, inputs)
        shapes[f"classifier.{3 * position}.bias"] = (outputs,)
    return shapes


register(
    WeightFile(
        name="vgg19",
        description="torchvision's VGG-19, trained on ImageNet-1k",
        used_by=("utad",),
        url="https://download.pytorch.org/models/vgg19-dcbb9e9d.pth",
        file_name="vgg19-dcbb9e9d.pth",
        format="pytorch",
        sha256="dcbb9e9d",
        expected=vgg19_shapes,
    )
)


def _dsr_vqvae_shapes() -> Shapes:
    # Imported when a file is checked: the shapes come from the network that loads them.
    from adbench_methods.dsr.vqvae import published_shapes

    return published_shapes()


register(
    WeightFile(
        name="dsr-vqvae",
        description="DSR's two-level VQ-VAE (h 128, 2 × 4,096 codes of 128), trained on ImageNet by DSR's "
        "authors",
        used_by=("dsr",),
        url="https://drive.google.com/file/d/15plhikrUjYCcx23JVxxBKb-HBwKAb8UK/view",
        file_name="vq_model_pretrained_128_4096.pckl",
        format="pytorch",
        expected=_dsr_vqvae_shapes,
        downloadable=False,
        how_to_get="a zip of the authors' checkpoints behind a Google Drive page, linked from "
        "VitjanZ/DSR_anomaly_detection's README; the file is checkpoints/vq_model_pretrained_128_4096.pckl "
        "in it",
    )
)
