"""Training length as MVTec AD counts it: an epoch is 10,000 augmented views of a category (§4.2).

MVTec AD augments every category, objects and textures alike, to about 10,000 training patches and
trains its baselines for a number of epochs of them (§4.1): 200 for the autoencoders, 50 for AnoGAN.
"""

from __future__ import annotations

import math

VIEWS_PER_EPOCH = 10_000


def paper_steps(epochs: int, batch_size: int) -> int:
    """Optimiser steps of `epochs` epochs of `VIEWS_PER_EPOCH` views in batches of `batch_size`."""
    return epochs * math.ceil(VIEWS_PER_EPOCH / batch_size)
