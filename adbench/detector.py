"""The Detector contract: what every method, ours or a third party's, implements.

Conventions shared by every method:

- Images reach a detector as float32 tensors of shape (N, C, H, W) with values in [0, 1], already
  resized by the harness to the detector's `input_spec` (side `image_size`, `channels` 1 or 3).
- Scores follow the anomaly-detection convention: **higher = more anomalous** (scikit-learn's outlier
  API is the opposite). Anomaly maps have the input's spatial size, one float32 value per pixel, also
  higher = more anomalous.
- A detector is built from one frozen dataclass of hyperparameters (`Params`), chosen per category and
  budget by `default_params`; the harness stores it unchanged in the run manifest and the checkpoint.
- `save`/`load` use safetensors: loading never executes code from the file. `load` builds the detector
  from the checkpoint's params and takes the checkpoint's tensors only when they are the ones its
  `state_tensors` hold, name for name, in the same shapes and dtypes; anything else is refused in one
  line naming the tensor. A tensor in another dtype (a float16 or float64 copy of a float32 weight,
  written or converted by another tool) is refused, not converted: `save` writes every tensor in its
  network's dtype, a narrowing conversion would score another detector than the one trained, and a
  widening one cannot be told apart from it by the file alone.
"""

from __future__ import annotations

import abc
import dataclasses
import json
import math
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, ClassVar, Generic, Literal, Self, TypeVar

import numpy as np
import torch
from safetensors import SafetensorError, safe_open
from safetensors.torch import load_file, save_file

from adbench.atomic import write_atomic
from adbench.errors import AdbenchError
from adbench.files import parse_json
from adbench.params import ParamsError, checked_fields

InferenceKind = Literal["single-pass", "iterative"]
CategoryKind = Literal["texture", "object"]
BudgetName = Literal["smoke", "default", "paper"]
BUDGETS: tuple[BudgetName, ...] = ("smoke", "default", "paper")

# Called after each optimiser step with the step index (from 0) and that step's losses.
StepCallback = Callable[[int, Mapping[str, float]], None]


@dataclass(frozen=True)
class CategorySpec:
    """What a method may know about a category before it sees any image."""

    name: str
    kind: CategoryKind
    channels: int  # 1 for grayscale categories, 3 for colour
    # A rotated image of it is still defect-free (methods may train on rotated views): set by the dataset
    # format (MVTec AD's bottle, hazelnut, metal_nut, screw) and by ROOT/categories.toml.
    rotation_invariant: bool = False


@dataclass(frozen=True)
class InputSpec:
    """The tensors a detector expects; the harness resizes and caches images to match."""

    image_size: int  # side of the square image, pixels
    channels: int  # 1 or 3; colour images are converted to grayscale when 1, grayscale to RGB when 3


@dataclass(frozen=True)
class TrainingBudget:
    """How much training `fit` may do: a number of optimiser steps, or of epochs over the training set."""

    steps: int | None  # optimiser steps; None when counted in epochs
    batch_size: int
    epochs: int | None = None  # passes over the training set; what an epoch holds is the method's to say

    def __post_init__(self) -> None:
        if (self.steps is None) == (self.epochs is None):
            raise ValueError(f"a training budget needs steps or epochs, exactly one: {self}")


@dataclass(frozen=True)
class Scores:
    """What `score` returns for N images."""

    image_scores: np.ndarray  # (N,) float64, higher = more anomalous
    anomaly_maps: np.ndarray | None  # (N, H, W) float32 at input resolution, or None

    def __post_init__(self) -> None:
        if self.image_scores.ndim != 1:
            raise ValueError(f"image_scores must be 1-D, got shape {self.image_scores.shape}")
        if self.anomaly_maps is not None and (
            self.anomaly_maps.ndim != 3 or len(self.anomaly_maps) != len(self.image_scores)
        ):
            raise ValueError(
                f"anomaly_maps must be (N, H, W) with N={len(self.image_scores)}, "
                f"got {self.anomaly_maps.shape}"
            )


if TYPE_CHECKING:
    from _typeshed import DataclassInstance

# A detector's hyperparameters: a frozen dataclass (`Detector.Params`).
ParamsT = TypeVar("ParamsT", bound="DataclassInstance")


class Detector(abc.ABC, Generic[ParamsT]):
    """A reconstruction-based anomaly detector that the harness can train, score and store.

    Subclasses set the class attributes `name` (the entry-point name), `inference_kind` and `Params`
    (a frozen dataclass; `class Mine(Detector[MyParams])` types `self.params` as it), optionally
    `loss_labels` (the report's words for the losses `fit` reports), and implement the abstract
    methods. The constructor takes the params and a torch device and builds untrained networks; weights
    are initialised from torch's global RNG, which the harness seeds before construction. An untrained
    detector's `state_tensors` have the names, shapes and dtypes of a trained one's (with the same
    params): `load` checks a checkpoint against them.
    """

    name: ClassVar[str]
    inference_kind: ClassVar[InferenceKind]
    Params: ClassVar[type]
    # Each loss name of `fit`'s on_step -> what the report's loss plot calls it; others show as named.
    loss_labels: ClassVar[dict[str, str]] = {}
    # The method whose trained networks this one scores with (e.g. an iterative inference on another
    # method's GAN), or None when it trains its own. In a run, the harness then trains that method's
    # cell and hands the trained detector to `adopt` instead of calling `fit`: one training per
    # category and seed serves both, so that their comparison isolates the inference.
    trained_by: ClassVar[str | None] = None

    def __init__(self, params: ParamsT, device: str | torch.device = "cpu") -> None:
        if not isinstance(params, self.Params):
            raise TypeError(
                f"{type(self).__name__} needs {self.Params.__name__}, got {type(params).__name__}"
            )
        self.params: ParamsT = params
        self.device = torch.device(device)

    @classmethod
    @abc.abstractmethod
    def default_params(cls, category: CategorySpec, budget: BudgetName) -> Any:
        """The hyperparameters for `category` at the named budget (input sizes included)."""

    @classmethod
    @abc.abstractmethod
    def default_budget(cls, category: CategorySpec, budget: BudgetName) -> TrainingBudget:
        """The training schedule for `category` at the named budget."""

    @classmethod
    def departures(cls, category: CategorySpec, budget: BudgetName) -> tuple[str, ...]:
        """Where the method at this budget departs from its paper, each with its reason (one sentence
        each); shown by `adbench run --dry-run`. Empty when it follows the paper, or declares nothing."""
        return ()

    @classmethod
    def params_departures(cls, params: Any) -> tuple[str, ...]:
        """Departures that follow from the chosen params rather than the budget (a built-in substitute
        for a resource the user did not give); `--dry-run` lists them after `departures`."""
        return ()

    @classmethod
    def check_resources(cls, params: Any) -> None:
        """Raise AdbenchError, one line naming the file and the fix, when something `params` need besides
        the dataset and the run's checkpoints (a folder of texture images, a pretrained weight file) is
        missing or unusable. The harness calls it for every cell of a run that trains, before the run
        folder exists, and on `--dry-run`; re-scoring stored checkpoints (`--eval-only`) skips it. Most
        methods need nothing."""

    @classmethod
    def check_scoring_resources(cls, params: Any) -> None:
        """As `check_resources`, for what scoring needs besides the checkpoint (a pretrained network the
        anomaly maps are computed with): called for every cell of every run, `--eval-only` included, before
        the run folder exists. Most methods need nothing."""

    def training_steps(self, budget: TrainingBudget, train_images: int) -> int:
        """Optimiser steps `fit` takes on `train_images` images; an epoch is one pass over the images.

        Methods that train on several crops per image count their epochs in crops by overriding this.
        """
        if budget.steps is not None:
            return budget.steps
        assert budget.epochs is not None
        return budget.epochs * math.ceil(train_images / budget.batch_size)

    @property
    @abc.abstractmethod
    def input_spec(self) -> InputSpec:
        """Size and channels of the images `fit` and `score` receive."""

    @abc.abstractmethod
    def fit(self, images: torch.Tensor, budget: TrainingBudget, on_step: StepCallback | None = None) -> None:
        """Learn from defect-free images only: (N, C, H, W) float32 in [0, 1] matching `input_spec`.

        Must call `on_step` once per optimiser step when given; the harness logs those losses.
        """

    @abc.abstractmethod
    def score(self, images: torch.Tensor) -> Scores:
        """One anomaly score per image (higher = more anomalous) and, if the method can, a map per image.

        Deterministic: the same images give the same scores. Must not change the detector's state.
        """

    def adopt(self, trained: Detector) -> None:
        """Score with the networks of `trained`, a detector of method `trained_by` fitted (or loaded) on
        the same category and seed at the same budget, instead of fitting; afterwards `state_tensors`
        holds the tensors it took. Only methods that set `trained_by` implement it. The harness checks
        first that the two detectors' params agree on every field both have (`shared_params_mismatch`).
        """
        raise NotImplementedError(f"{self.name} trains its own networks (its trained_by is None)")

    def reconstruct(self, images: torch.Tensor) -> torch.Tensor | None:
        """What the method rebuilds `images` into, (N, C', H, W) in [0, 1] at input resolution (C' may be
        1 for methods that see grayscale), or None for methods that do not reconstruct. Used only for
        the qualitative figures, on a few images; must not change the detector's state.
        """
        return None

    @abc.abstractmethod
    def state_tensors(self) -> dict[str, torch.Tensor]:
        """Every tensor needed to score again, by name (what `save` writes)."""

    @abc.abstractmethod
    def load_state_tensors(self, tensors: Mapping[str, torch.Tensor]) -> None:
        """Restore what `state_tensors` returned."""

    def save(self, path: Path) -> None:
        """Write the state and the params to a safetensors file, atomically."""
        metadata = {"method": self.name, "params": json.dumps(dataclasses.asdict(self.params))}
        tensors = {key: value.detach().contiguous().cpu() for key, value in self.state_tensors().items()}

        def write(tmp: Path) -> None:
            try:
                save_file(tensors, str(tmp), metadata=metadata)
            except SafetensorError as error:
                # It reports a full disk as text ("... (os error 28)"); as an OSError, write_atomic and the
                # command line turn it into their one-line message.
                code = re.search(r"os error (\d+)", str(error))
                if code is None:
                    raise
                raise OSError(int(code[1]), os.strerror(int(code[1])), str(path)) from error

        write_atomic(path, write)

    @classmethod
    def load(cls, path: Path, device: str | torch.device = "cpu") -> Self:
        """Rebuild a detector from a file written by `save` of the same method; its params are checked as
        a grid file's are (`adbench.params`)."""
        try:
            with safe_open(str(path), framework="pt") as handle:
                metadata = handle.metadata() or {}
            tensors = load_file(str(path))
        except (SafetensorError, OSError) as error:
            raise AdbenchError(
                f"{path}: not a readable adbench checkpoint ({error}); retrain this cell"
            ) from None
        method = metadata.get("method")
        if method is None:  # a safetensors file from another tool; "load it with None" would not help
            raise AdbenchError(f"{path}: not an adbench checkpoint (no method recorded); retrain this cell")
        if method != cls.name:
            raise AdbenchError(
                f"{path}: checkpoint of method {method!r}, not {cls.name!r}; "
                f"load it with {method!r} or retrain"
            )
        try:
            stored = parse_json(metadata["params"])
        except (KeyError, ValueError) as error:
            raise AdbenchError(
                f"{path}: checkpoint without readable params ({error!r}); retrain this cell"
            ) from None
        try:
            # Checked before anything is built: a lying side or width would allocate at construction.
            fields = checked_fields(cls.Params, stored)
        except ParamsError as error:
            raise AdbenchError(f"{path}: checkpoint params {error}; retrain this cell") from None
        try:
            detector = cls(cls.Params(**fields), device=device)
            _check_tensors(path, cls.name, detector.state_tensors(), tensors)
            detector.load_state_tensors(tensors)
        except (KeyError, TypeError, ValueError, RuntimeError) as error:
            why = str(error).strip().splitlines()[0] if str(error).strip() else type(error).__name__
            raise AdbenchError(
                f"{path}: checkpoint does not match {cls.name}'s current parameters or networks ({why}); "
                "retrain this cell"
            ) from None
        return detector


def shared_params_mismatch(params: Any, provider_params: Any) -> str | None:
    """The first field that the dataclasses `params` and `provider_params` both have with different
    values, as "name: value against value", or None when they agree: a method that adopts another's
    networks (`Detector.trained_by`) must be built for the same images, sizes and training."""
    provider_values = dataclasses.asdict(provider_params)
    for name, value in dataclasses.asdict(params).items():
        if name in provider_values and provider_values[name] != value:
            return f"{name}: {value!r} against {provider_values[name]!r}"
    return None


def _check_tensors(
    path: Path, method: str, expected: Mapping[str, torch.Tensor], stored: Mapping[str, torch.Tensor]
) -> None:
    """AdbenchError naming the first tensor of the checkpoint at `path` that is not one of `expected`
    (what `method`'s networks, built from the checkpoint's params, hold) in name, shape and dtype."""

    def mismatch(detail: str, cause: str) -> AdbenchError:
        return AdbenchError(
            f"{path}: checkpoint does not match {method}'s current parameters or networks ({detail}); "
            f"{cause}; retrain this cell"
        )

    changed = f"it was saved by another version of {method}, or its params or tensors were changed since"
    missing, unknown = sorted(expected.keys() - stored.keys()), sorted(stored.keys() - expected.keys())
    if missing:
        raise mismatch(f"no tensor {missing[0]!r}, which they hold", changed)
    if unknown:
        raise mismatch(f"tensor {unknown[0]!r:.80}, which they lack", changed)
    for name, tensor in stored.items():
        shape, wanted = list(tensor.shape), list(expected[name].shape)
        if shape != wanted:
            raise mismatch(
                f"tensor {name!r:.80} has shape {shape}, the networks built from its params {wanted}", changed
            )
        if tensor.dtype != expected[name].dtype:
            raise mismatch(
                f"tensor {name!r:.80} is {tensor.dtype}, the networks' {expected[name].dtype}",
                "adbench saves every tensor in its network's dtype and converts none, so another tool wrote "
                "or converted this one",
            )
