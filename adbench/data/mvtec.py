"""Facts about the MVTec AD categories that the dataset itself does not state."""

from adbench.detector import CategoryKind

TEXTURES = ("carpet", "grid", "leather", "tile", "wood")
OBJECTS = (
    "bottle",
    "cable",
    "capsule",
    "hazelnut",
    "metal_nut",
    "pill",
    "screw",
    "toothbrush",
    "transistor",
    "zipper",
)
KINDS: dict[str, CategoryKind] = {
    name: "texture" if name in TEXTURES else "object" for name in (*TEXTURES, *OBJECTS)
}

# Objects photographed in arbitrary orientation, so rotation is a safe augmentation (CBiGAN paper §V-A).
ROTATION_INVARIANT = ("bottle", "hazelnut", "metal_nut", "screw")


def is_mvtec(categories: list[str] | tuple[str, ...]) -> bool:
    """True when every category name is an MVTec AD category (used to show the paper's numbers)."""
    return bool(categories) and all(name in KINDS for name in categories)
