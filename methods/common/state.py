"""Checkpoint tensors of several named modules, as one flat `name.key` mapping; freezing modules."""

from __future__ import annotations

import contextlib
from collections.abc import Iterator, Mapping

import torch
from torch import nn


def modules_state(modules: Mapping[str, nn.Module]) -> dict[str, torch.Tensor]:
    return {
        f"{name}.{key}": value
        for name, module in modules.items()
        for key, value in module.state_dict().items()
    }


def load_modules_state(modules: Mapping[str, nn.Module], tensors: Mapping[str, torch.Tensor]) -> None:
    """Inverse of `modules_state`; a missing or unexpected key raises (torch's strict loading)."""
    unclaimed = set(tensors)
    for name, module in modules.items():
        prefix = f"{name}."
        own = {key: value for key, value in tensors.items() if key.startswith(prefix)}
        unclaimed -= own.keys()
        module.load_state_dict({key[len(prefix) :]: value for key, value in own.items()})
    if unclaimed:
        raise KeyError(f"tensors of no module: {sorted(unclaimed)[:5]}")


@contextlib.contextmanager
def frozen(*modules: nn.Module) -> Iterator[None]:
    """No gradients for the trainable weights of `modules` inside the block (what another part is trained
    or searched against stays as it is, and costs no weight gradients); restored on leaving."""
    weights = [w for module in modules for w in module.parameters() if w.requires_grad]
    for weight in weights:
        weight.requires_grad_(False)
    try:
        yield
    finally:
        for weight in weights:
            weight.requires_grad_(True)


class ModulesState:
    """`state_tensors` and `load_state_tensors` of a detector made of named modules (`_modules`): the
    checkpoint is their flat `name.key` mapping, and loading leaves every module in eval mode. Listed
    before `Detector` among a detector's bases."""

    def _modules(self) -> dict[str, nn.Module]:
        raise NotImplementedError

    def state_tensors(self) -> dict[str, torch.Tensor]:
        return modules_state(self._modules())

    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        load_modules_state(self._modules(), tensors)
        for module in self._modules().values():
            module.eval()
