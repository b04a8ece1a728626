"""Decoding one image or mask file: modes and bit depths to 8 bits, float ranges, resizing; every
failure is an AdbenchError naming the file."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
from PIL import Image, UnidentifiedImageError

from adbench.detector import InputSpec
from adbench.errors import AdbenchError

FLOAT_MODE = "F"  # Pillow's 32-bit float grayscale (float TIFFs)
GRAY_MODES = {"L", "I", "I;16", "I;16B", "I;16L", "1", FLOAT_MODE}
DECODE_ERRORS = (OSError, UnidentifiedImageError, SyntaxError, ValueError, Image.DecompressionBombError)


def open_image(path: Path) -> Image.Image:
    """The decoded image; AdbenchError naming the file when it is unreadable."""
    try:
        image = Image.open(path)
    except DECODE_ERRORS as error:
        raise unreadable_image(path, error) from None
    try:
        image.load()  # reads the pixels and closes the file (a single-frame image)
    except DECODE_ERRORS as error:
        image.close()
        raise unreadable_image(path, error) from None
    return image


def read_header(path: Path) -> tuple[str, tuple[int, int]]:
    """The image's mode and size, read from its header only; the file is closed again."""
    try:
        with Image.open(path) as image:
            return image.mode, image.size
    except DECODE_ERRORS as error:
        raise unreadable_image(path, error) from None


def unreadable_image(path: Path, error: BaseException) -> AdbenchError:
    return AdbenchError(f"{path}: unreadable or truncated image ({error}); replace or remove it")


def mask_size_error(
    mask_path: Path, mask_size: tuple[int, int], image_path: Path, image_size: tuple[int, int]
) -> AdbenchError:
    return AdbenchError(
        f"{mask_path}: mask is {mask_size[0]}x{mask_size[1]} but its image {image_path.name} is "
        f"{image_size[0]}x{image_size[1]}; masks must match their image's size"
    )


def to_uint8(image: Image.Image, channels: int, path: Path) -> Image.Image:
    """Convert any mode to L or RGB; 16-bit, 32-bit and float grayscale are scaled, not clipped, to 8 bits
    (float from [0, 1], `float_pixels`); AdbenchError naming `path` for a float image outside [0, 1]."""
    if image.mode == FLOAT_MODE:
        image = Image.fromarray(np.round(float_pixels(image, path) * 255.0).astype(np.uint8))
    elif image.mode in ("I", "I;16", "I;16B", "I;16L"):
        values = np.asarray(image, dtype=np.float64)
        image = Image.fromarray(np.round(values * 255.0 / _sixteen_bit_top(image, path)).astype(np.uint8))
    if image.mode in ("RGBA", "LA", "P", "PA"):
        image = image.convert("RGBA").convert("RGB")
    return image.convert("L" if channels == 1 else "RGB")


def _sixteen_bit_top(image: Image.Image, path: Path) -> float:
    """65535, the top of the 16-bit modes' range. Mode I (a TIFF of 32 or signed bits) states no range
    Pillow reads, and guessing one from the pixels would brighten a dark image 257x, and differently
    from its brighter neighbours, so it is refused."""
    if image.mode.startswith("I;16"):
        return 65535.0
    tags = getattr(image, "tag_v2", {})
    raise AdbenchError(
        f"{path}: a {_bits(tags)}integer image, whose range adbench cannot read from the file; "
        "save it as an 8- or 16-bit (unsigned) image"
    )


def _bits(tags: Any) -> str:
    bits, sample_format = tags.get(258), tags.get(339, 1)
    signed = "signed " if sample_format in (2, (2,)) else ""
    return f"{bits[0] if isinstance(bits, tuple) else bits}-bit {signed}" if bits else signed


def float_pixels(image: Image.Image, path: Path) -> np.ndarray:
    """A float image's pixels in [0, 1], the range float images are read in (as Pillow, scikit-image
    and torchvision write them); AdbenchError naming `path` for values outside it. No range is guessed
    from the pixels: a float image in [0, 255] and a dark one in [0, 1] cannot be told apart."""
    values = np.asarray(image, dtype=np.float64)
    if not np.isfinite(values).all():
        raise AdbenchError(f"{path}: float image with NaN or infinite pixels; replace it")
    low, high = values.min(initial=0.0), values.max(initial=0.0)
    if low < 0 or high > 1:
        raise AdbenchError(
            f"{path}: float image with pixels from {low:g} to {high:g}; float images are read as 0 "
            "(black) to 1 (white): scale it to [0, 1], or save it as an 8- or 16-bit image"
        )
    return values


def check_pixel_range(path: Path, mode: str) -> None:
    """What a run checks of a float or integer image's range (`float_pixels`, `_sixteen_bit_top`), for
    `adbench data info`; nothing to check (and nothing read) for the other modes."""
    if mode == FLOAT_MODE:
        float_pixels(open_image(path), path)
    elif mode == "I":
        with Image.open(path) as image:
            _sixteen_bit_top(image, path)


def resized_array(image: Image.Image, spec: InputSpec, path: Path) -> np.ndarray:
    image = to_uint8(image, spec.channels, path)
    if image.size != (spec.image_size, spec.image_size):
        image = image.resize((spec.image_size, spec.image_size), Image.Resampling.BILINEAR)
    array = np.asarray(image, dtype=np.uint8)
    return array[:, :, None] if array.ndim == 2 else array


def defect_pixels(mask: Image.Image) -> np.ndarray:
    """(H, W) bool: nonzero = defect, whatever the bit depth (a 16-bit 0/1 mask scaled to 8 bits would be
    empty). Colour and palette masks count what shows on black: any nonzero colour, unless transparent
    (a luminance threshold would miss a dark blue mark)."""
    if mask.mode in GRAY_MODES:
        return np.asarray(mask) != 0
    rgba = np.asarray(mask.convert("RGBA"))
    return rgba[..., :3].any(axis=2) & (rgba[..., 3] != 0)
