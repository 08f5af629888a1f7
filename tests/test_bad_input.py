"""Bad input at the public entry points: each gets an exception of a known type whose message says what was wrong.

One table, one row per bad input: the area it belongs to, the call (given lazily built fixtures), the expected
exception type and a fragment of its message. The fake world of :mod:`fake_world` (3 units, 8 x 8 images) keeps
every row to milliseconds.
"""

from __future__ import annotations

import pickle
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from fake_linked import fake_world, identity_linked, linked  # noqa: F401  (fixtures)
from torch import nn

from linkviz.controllers import PopulationAnalysis, UnitTuning
from linkviz.controllers.unit_tuning import parse_seeds
from linkviz.dissection import unit_quantiles, upsample
from linkviz.lavise import csmr_loss, load_explainer, masked_pool
from linkviz.linking import LinearLink, fit_linear_link
from linkviz.models import (
    Classifier,
    ClassifierSpec,
    FunctionEdit,
    GeneratorOutputError,
    LayerCalledTwiceError,
    LayerNotFoundError,
    UnitEdit,
    check_generated,
    load_stylegan_pickle,
    run_with_cache,
)
from linkviz.models.safetensors_io import NotSafetensorsError
from linkviz.pairs import pair_seeds
from linkviz.quantify import ChangeTable, measure_parts, part_angle, part_eccentricity, part_luminance
from linkviz.tuning import run_sweep


class _Inputs:
    """The fixtures a row may need, built on first use: ``linked`` (the fake world, identity link) and files."""

    def __init__(self, request: pytest.FixtureRequest, tmp_path: Path) -> None:
        self._request = request
        self.tmp_path = tmp_path

    @property
    def linked(self) -> Any:
        return self._request.getfixturevalue("identity_linked")

    def file(self, name: str, content: bytes) -> Path:
        path = self.tmp_path / name
        path.write_bytes(content)
        return path

    def pickle_file(self, name: str, obj: Any) -> Path:
        return self.file(name, pickle.dumps(obj))


@dataclass(frozen=True)
class Case:
    area: str
    call: Callable[[_Inputs], Any]
    error: type[BaseException]
    match: str


class _ReusedReLU(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.relu = nn.ReLU()
        self.fc = nn.Linear(2, 2)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.relu(self.fc(self.relu(x)))


class _Pooled(nn.Module):
    """[N, 3, H, W] -> 1x1 conv -> pool -> fc: logits [N, 3]."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 3, kernel_size=1)
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(3, 3)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(self.pool(self.conv(x)).flatten(1))


def _classifier(module: nn.Module | None = None) -> Classifier:
    spec = ClassifierSpec(input_size=(4, 4), in_channels=3, value_range=(0.0, 1.0), mean=(0.0,) * 3, std=(1.0,) * 3,
                          resize_to=None, penultimate_layer="pool", class_names=("a", "b", "c"), head_layer="fc")
    return Classifier(_Pooled() if module is None else module, spec)


def _split_over_devices() -> Classifier:
    module = _Pooled()
    module.fc.to("meta")
    return _classifier(module)


def _disk(radius: float = 5.0, size: int = 32) -> np.ndarray:
    rows, cols = np.mgrid[:size, :size]
    return (rows - size / 2) ** 2 + (cols - size / 2) ** 2 <= radius**2


_IMAGE = np.zeros((32, 32, 3), np.uint8)
_GARBAGE = bytes(range(7, 250, 3)) * 4
_SAFETENSORS_PICKLE = pickle.dumps({"weight": np.eye(3), "bias": np.zeros(3)})


def _sweep(inputs: _Inputs, **options: Any) -> Any:
    model = inputs.linked
    return run_sweep(model.link, model.generator, model.pairs.r[:2], stats=model.stats,
                     out_dir=inputs.tmp_path / "sweep", progress=False, **options)


CASES = {
    # models: edits, hooks, classifier input, generator pickles
    "unit-edit-float-unit": Case("models", lambda _: UnitEdit("fc", 12.7, "add", 1.0), ValueError,
                                 r"integer.*12\.7"),
    "function-edit-float-unit": Case("models", lambda _: FunctionEdit("fc", torch.neg, units=(0, 1.5)), ValueError,
                                     "integer"),
    "unit-edit-nan-value": Case("models", lambda _: UnitEdit("fc", 0, "add", float("nan")), ValueError,
                                "1 non-finite entries"),
    "unit-edit-inf-tensor-value": Case("models", lambda _: UnitEdit("fc", (0, 1), "replace", torch.tensor(
        [1.0, float("inf")])), ValueError, "1 non-finite entries"),
    "unit-edit-text-value": Case("models", lambda _: UnitEdit("fc", 0, "add", "big"), TypeError,
                                 "must be a number"),
    "hook-unknown-layer": Case("models", lambda _: run_with_cache(_ReusedReLU(), torch.ones(1, 2), "rellu"),
                               LayerNotFoundError, "did you mean 'relu'"),
    "hook-module-called-twice": Case("models", lambda _: run_with_cache(_ReusedReLU(), torch.ones(1, 2), "relu"),
                                     LayerCalledTwiceError, "'relu' was called 2 times per forward pass"),
    "classifier-uint8-images": Case("models", lambda _: _classifier().forward_generated(
        torch.zeros(1, 3, 4, 4, dtype=torch.uint8)), GeneratorOutputError, "torch.uint8"),
    "classifier-images-out-of-range": Case("models", lambda _: _classifier().forward_generated(
        torch.full((1, 3, 4, 4), 255.0)), GeneratorOutputError, r"outside \[-1, 1\].*max 255"),
    "classifier-split-over-devices": Case("models", lambda _: _split_over_devices().forward_generated(
        torch.zeros(1, 3, 4, 4)), ValueError, r"several devices \(cpu, meta\)"),
    "generated-nan": Case("models", lambda _: check_generated(torch.full((1, 3, 2, 2), float("nan"))),
                          GeneratorOutputError, "12 NaN"),
    "stylegan-pickle-without-generator": Case("files", lambda inputs: load_stylegan_pickle(
        inputs.pickle_file("net.pkl", {"G_ema": "not a network", "D": 3}), allow_unpickle=True), TypeError,
        r"net\.pkl\['G_ema'\] is a str, not a StyleGAN generator"),
    "stylegan-pickle-garbage": Case("files", lambda inputs: load_stylegan_pickle(
        inputs.file("net.pkl", _GARBAGE), allow_unpickle=True), ValueError, r"net\.pkl is not a pickle"),
    # the link
    "fit-nan-r": Case("link", lambda _: fit_linear_link(np.full((10, 3), np.nan), np.zeros((10, 2))), ValueError,
                      "r contains 30 non-finite values"),
    "fit-too-few-distinct-pairs": Case("link", lambda _: fit_linear_link(
        np.tile(np.eye(3), (4, 1)), np.tile(np.eye(3)[:, :2], (4, 1))), ValueError, "only 3 distinct"),
    "link-nan-weight": Case("link", lambda _: LinearLink(weight=np.full((2, 3), np.nan), bias=np.zeros(2)),
                            ValueError, "NaN or inf"),
    "link-load-pickle": Case("files", lambda inputs: LinearLink.load(
        inputs.file("link.safetensors", _SAFETENSORS_PICKLE)), NotSafetensorsError,
        r"link\.safetensors is not a safetensors file.*linear link: it looks like a pickle"),
    "link-load-garbage": Case("files", lambda inputs: LinearLink.load(inputs.file("link.safetensors", _GARBAGE)),
                              ValueError, r"link\.safetensors is not a safetensors file"),
    "link-load-missing": Case("files", lambda inputs: LinearLink.load(inputs.tmp_path / "none.safetensors"),
                              FileNotFoundError, r"linear link .*none\.safetensors not found"),
    # pairs (only cases that pass already; the pairs module has its own suite)
    "pairs-no-samples": Case("pairs", lambda _: pair_seeds(0, classes=[0], samples_per_class=0), ValueError,
                             "samples_per_class must be in"),
    "pairs-float-class": Case("pairs", lambda _: pair_seeds(0, classes=[0.5], samples_per_class=2), ValueError,
                              r"integer class ids \(0\.5 is refused"),
    # sweep
    "sweep-float-unit": Case("sweep", lambda inputs: _sweep(inputs, units=3.7), ValueError, r"integer.*3\.7"),
    "sweep-unit-out-of-range": Case("sweep", lambda inputs: _sweep(inputs, units=[5]), IndexError,
                                    "unit 5 out of range"),
    # quantify
    "part-angle-nan-mask": Case("quantify", lambda _: part_angle(_IMAGE, np.where(_disk(), np.nan, 0.0)),
                                ValueError, "got dtype float64, 81 of them NaN"),
    "part-eccentricity-float-mask": Case("quantify", lambda _: part_eccentricity(_IMAGE, _disk().astype(float)),
                                         ValueError, "mask must be boolean"),
    "part-luminance-label-map": Case("quantify", lambda _: part_luminance(_IMAGE, _disk().astype(int) * 2),
                                     ValueError, "only 0 and 1"),
    "measure-parts-float-masks": Case("quantify", lambda _: measure_parts(
        _IMAGE[None], _disk()[None].astype(float), ["background", "disk"]), ValueError, "integer label indices"),
    # dissection
    "quantile-level": Case("dissection", lambda _: unit_quantiles(torch.zeros(2, 3, 4, 4), level=1.5), ValueError,
                           r"level must lie in \(0, 1\), got 1\.5"),
    "upsample-shape": Case("dissection", lambda _: upsample(torch.zeros(3, 4, 4), (8, 8)), ValueError,
                           r"\[n, C, h, w\] or \[n, C\], got \(3, 4, 4\)"),
    # LaViSE
    "lavise-pool-mismatch": Case("lavise", lambda _: masked_pool(torch.zeros(2, 3, 4, 4), torch.zeros(2, 5, 5)),
                                 ValueError, "must agree in S, h and w"),
    "lavise-loss-dims": Case("lavise", lambda _: csmr_loss(torch.zeros(2, 3), torch.zeros(4, 5), torch.zeros(2, 4)),
                             ValueError, "must share D"),
    "lavise-explainer-garbage": Case("files", lambda inputs: load_explainer(
        inputs.file("head.safetensors", _GARBAGE)), NotSafetensorsError,
        r"head\.safetensors is not a safetensors file.*LaViSE explainer"),
    # the widgets' controllers
    "tuning-nan-value": Case("controllers", lambda inputs: UnitTuning(inputs.linked).compute(0, float("nan"), (0,)),
                             ValueError, "value must be a finite number; got nan"),
    "tuning-inf-value": Case("controllers", lambda inputs: UnitTuning(inputs.linked).compute(0, np.inf, (0,)),
                             ValueError, "value must be a finite number; got inf"),
    "tuning-float-unit": Case("controllers", lambda inputs: UnitTuning(inputs.linked).compute(1.7, 1.0, (0,)),
                              ValueError, "integer"),
    "tuning-float-seed": Case("controllers", lambda _: parse_seeds((1.9,), 4), ValueError, r"integer.*1\.9"),
    "population-empty-table": Case("controllers", lambda _: PopulationAnalysis(ChangeTable.concat([])), ValueError,
                                   r"change table is empty \(0 rows\)"),
}


@pytest.mark.parametrize("name", list(CASES))
def test_bad_input_raises_a_clear_error(name, request, tmp_path):
    case = CASES[name]
    inputs = _Inputs(request, tmp_path)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # e.g. the unpickling and duplicate-pair warnings; the error is the point
        with pytest.raises(case.error, match=case.match):
            case.call(inputs)


def test_the_table_spans_every_area():
    assert {case.area for case in CASES.values()} == {"models", "link", "pairs", "sweep", "quantify", "dissection",
                                                      "lavise", "controllers", "files"}


def test_good_inputs_next_to_the_bad_ones_pass():
    assert UnitEdit("fc", 12, "add", 1.0).units == (12,)  # a bare int is one unit
    logits, r = _classifier().forward_generated(torch.zeros(2, 3, 4, 4, dtype=torch.float64))  # cast, not refused
    assert logits.dtype == r.dtype == torch.float32 and r.shape == (2, 3)
    assert np.isnan(part_angle(_IMAGE, _disk()))  # a disk has no orientation, not 45 degrees


# --- the widgets show these errors ---


def test_unit_tuner_refuses_a_float_seed(request, tmp_path):
    from linkviz.widgets import UnitTuner

    with pytest.raises(ValueError, match=r"integer.*1\.9"):
        UnitTuner(_Inputs(request, tmp_path).linked, seeds=(1.9,))


def test_unit_tuner_shows_a_nan_value_in_its_error_area(request, tmp_path):
    from linkviz.widgets import UnitTuner

    tuner = UnitTuner(_Inputs(request, tmp_path).linked, seeds=(0, 1))
    tuner.value.value = float("nan")
    assert tuner.wait_idle(30)
    assert "value must be a finite number" in tuner.error.value
    tuner.value.value = 0.5
    assert tuner.wait_idle(30)
    assert tuner.error.value == ""


def test_population_dashboard_on_an_empty_sweep_says_so():
    from linkviz.widgets import PopulationDashboard

    with pytest.raises(ValueError, match=r"change table is empty.*run the sweep"):
        PopulationDashboard(ChangeTable.concat([]))
