"""The focal loss DRAEM and DSR train their segmentation heads with (Lin et al., ICCV 2017), in the form of
both codes' loss.py: per pixel −(1 − p_t)^γ · log p_t with γ = 2 and no class weights, where p_t is the
softmax probability of the pixel's true class, taken against a one-hot target smoothed to [1e-5, 1 − 1e-5]
and offset by 1e-5 (so that log p_t stays finite); averaged over all pixels.
"""

from __future__ import annotations

import torch

GAMMA = 2.0
SMOOTH = 1e-5


def focal_loss(probabilities: torch.Tensor, masks: torch.Tensor, gamma: float = GAMMA) -> torch.Tensor:
    """`probabilities` (N, 2, H, W), a softmax over (normal, anomalous); `masks` (N, 1, H, W) in {0, 1}."""
    target = torch.cat((1 - masks, masks), dim=1).clamp(SMOOTH, 1 - SMOOTH)
    p_true = (target * probabilities).sum(dim=1) + SMOOTH
    return (-((1 - p_true) ** gamma) * p_true.log()).mean()
