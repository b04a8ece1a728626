"""The conformance kit every detector passes, ours and third parties' alike.

In the spirit of scikit-learn's `check_estimator`: `detector_checks(cls)` yields small named checks of
the Detector contract, and `check_detector(cls)` runs them all. In a plugin's own test suite:

    import pytest
    from adbench.testing import detector_checks

    @pytest.mark.parametrize("check", detector_checks(MyDetector), ids=lambda c: c.__name__)
    def test_contract(check):
        check()

Each check fits on a few synthetic images at the `smoke` budget (a handful of steps), so the whole kit
runs in seconds per method.
"""

from __future__ import annotations

import dataclasses
import functools
import json
import tempfile
from collections.abc import Callable, Iterator
from pathlib import Path

import numpy as np
import torch

from adbench.detector import CategorySpec, Detector, Scores, TrainingBudget
from adbench.errors import AdbenchError

CHECK_CATEGORIES = (CategorySpec("kit_object", "object", 3), CategorySpec("kit_texture", "texture", 1))
CHECK_BUDGET = TrainingBudget(steps=3, batch_size=4)


def _images(detector: Detector, count: int, seed: int) -> torch.Tensor:
    spec = detector.input_spec
    generator = torch.Generator().manual_seed(seed)
    return torch.rand((count, spec.channels, spec.image_size, spec.image_size), generator=generator)


def _fitted(cls: type[Detector], category: CategorySpec, seed: int = 0) -> Detector:
    torch.manual_seed(seed)
    detector = cls(cls.default_params(category, "smoke"))
    detector.fit(_images(detector, 6, seed), CHECK_BUDGET)
    return detector


def check_declarations(cls: type[Detector]) -> None:
    """name, inference kind and a frozen Params dataclass are declared."""
    assert isinstance(cls.name, str) and cls.name, "set the class attribute `name` to the entry-point name"
    assert cls.inference_kind in ("single-pass", "iterative"), "inference_kind: 'single-pass' or 'iterative'"
    assert dataclasses.is_dataclass(cls.Params), "Params must be a dataclass"
    assert vars(cls.Params)["__dataclass_params__"].frozen, "Params must be frozen (dataclass(frozen=True))"


def check_params_round_trip(cls: type[Detector]) -> None:
    """Params survive the JSON round trip the manifest and the checkpoint make."""
    for category in CHECK_CATEGORIES:
        for budget in ("smoke", "default", "paper"):
            params = cls.default_params(category, budget)
            assert cls.Params(**json.loads(json.dumps(dataclasses.asdict(params)))) == params
            training = cls.default_budget(category, budget)
            assert (training.steps or training.epochs or 0) > 0 and training.batch_size > 0


def check_input_spec(cls: type[Detector]) -> None:
    """The input spec asks for 1 or 3 channels (the harness converts colour to grayscale and grayscale to
    RGB, as a method's paper loads them) and a positive size."""
    for category in CHECK_CATEGORIES:
        spec = cls(cls.default_params(category, "smoke")).input_spec
        assert spec.channels in (1, 3), f"channels {spec.channels} for {category}"
        assert spec.image_size > 0


def check_departures(cls: type[Detector]) -> None:
    """Declared departures from the paper (what `--dry-run` shows) are a tuple of sentences."""
    for category in CHECK_CATEGORIES:
        for budget in ("smoke", "default", "paper"):
            departures = cls.departures(category, budget)
            assert isinstance(departures, tuple), "departures returns a tuple of strings"
            assert all(isinstance(item, str) and item.strip() for item in departures)


def check_fit_reports_steps(cls: type[Detector]) -> None:
    """fit calls on_step once per optimiser step (as many as `training_steps` says) with finite losses."""
    category = CHECK_CATEGORIES[0]
    torch.manual_seed(0)
    detector = cls(cls.default_params(category, "smoke"))
    seen: list[tuple[int, dict[str, float]]] = []
    detector.fit(
        _images(detector, 6, 0), CHECK_BUDGET, lambda step, losses: seen.append((step, dict(losses)))
    )
    assert [step for step, _ in seen] == list(range(detector.training_steps(CHECK_BUDGET, 6)))
    assert all(losses and all(np.isfinite(v) for v in losses.values()) for _, losses in seen)


def check_score_shapes(cls: type[Detector]) -> None:
    """One finite float64 score per image; maps (N, H, W) float32 at input resolution."""
    for category in CHECK_CATEGORIES:
        detector = _fitted(cls, category)
        images = _images(detector, 3, 1)
        scores = detector.score(images)
        assert isinstance(scores, Scores)
        assert scores.image_scores.shape == (3,) and scores.image_scores.dtype == np.float64
        assert np.isfinite(scores.image_scores).all()
        if scores.anomaly_maps is not None:
            size = detector.input_spec.image_size
            assert scores.anomaly_maps.shape == (3, size, size)
            assert scores.anomaly_maps.dtype == np.float32


def check_reconstruction(cls: type[Detector]) -> None:
    """`reconstruct` gives None or (N, C', H, W) in [0, 1] at input resolution, and changes no score."""
    for category in CHECK_CATEGORIES:
        detector = _fitted(cls, category)
        images = _images(detector, 3, 1)
        before = detector.score(images).image_scores
        reconstructions = detector.reconstruct(images)
        if reconstructions is None:
            continue
        size = detector.input_spec.image_size
        assert reconstructions.ndim == 4 and reconstructions.shape[0] == 3
        assert reconstructions.shape[1] in (1, images.shape[1])
        assert reconstructions.shape[2:] == (size, size)
        assert float(reconstructions.min()) >= 0 and float(reconstructions.max()) <= 1
        np.testing.assert_allclose(detector.score(images).image_scores, before, rtol=1e-6)


def check_score_deterministic(cls: type[Detector]) -> None:
    """Scoring twice gives the same scores (score does not change the detector)."""
    detector = _fitted(cls, CHECK_CATEGORIES[0])
    images = _images(detector, 3, 1)
    first, second = detector.score(images), detector.score(images)
    np.testing.assert_allclose(first.image_scores, second.image_scores, rtol=1e-6)


def check_seeded_fit_reproducible(cls: type[Detector]) -> None:
    """The same seed gives the same trained detector."""
    first = _fitted(cls, CHECK_CATEGORIES[0], seed=3)
    second = _fitted(cls, CHECK_CATEGORIES[0], seed=3)
    images = _images(first, 3, 1)
    np.testing.assert_allclose(first.score(images).image_scores, second.score(images).image_scores, rtol=1e-5)


def check_save_load_round_trip(cls: type[Detector]) -> None:
    """save -> load gives identical scores and params."""
    detector = _fitted(cls, CHECK_CATEGORIES[1])
    images = _images(detector, 3, 1)
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.safetensors"
        detector.save(path)
        loaded = cls.load(path)
    assert loaded.params == detector.params
    np.testing.assert_array_equal(loaded.score(images).image_scores, detector.score(images).image_scores)


def check_load_rejects_other_method(cls: type[Detector]) -> None:
    """Loading a checkpoint written by another method fails with a clear AdbenchError."""
    detector = _fitted(cls, CHECK_CATEGORIES[0])
    with tempfile.TemporaryDirectory() as folder:
        path = Path(folder) / "checkpoint.safetensors"
        detector.save(path)
        impostor: type[Detector] = type("Impostor", (cls,), {"name": cls.name + "_other"})
        try:
            impostor.load(path)
        except AdbenchError as error:
            assert cls.name in str(error) and str(path) in str(error)
        else:
            raise AssertionError("loading another method's checkpoint must raise AdbenchError")


CHECKS: tuple[Callable[[type[Detector]], None], ...] = (
    check_declarations,
    check_params_round_trip,
    check_input_spec,
    check_departures,
    check_fit_reports_steps,
    check_score_shapes,
    check_reconstruction,
    check_score_deterministic,
    check_seeded_fit_reproducible,
    check_save_load_round_trip,
    check_load_rejects_other_method,
)


def detector_checks(cls: type[Detector]) -> Iterator[Callable[[], None]]:
    """Each check bound to `cls`, named after the check (for pytest ids)."""
    for check in CHECKS:
        bound = functools.partial(check, cls)
        functools.update_wrapper(bound, check)
        yield bound


def check_detector(cls: type[Detector]) -> None:
    """Run every check; the first failure raises AssertionError naming the check."""
    for check in detector_checks(cls):
        try:
            check()
        except AssertionError as error:
            raise AssertionError(f"{cls.__name__} fails {check.__name__}: {error}") from error
