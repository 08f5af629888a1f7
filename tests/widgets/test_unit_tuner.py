"""UnitTuner and its latest-wins worker, driven through their traits on tiny fake or untrained worlds."""

import dataclasses
import io
import threading

import numpy as np
import pytest
import torch
from PIL import Image

from linkviz.linking import LinearLink, LinkedModel, build_linked_model
from linkviz.models.classifier import Classifier
from linkviz.tuning import SetUnits, UnitStats, effect_sizes
from linkviz.widgets import LatestWinsWorker, UnitTuner
from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC, ToyWorld
from linkviz.worlds.toy.classifier_net import ToyResNet
from linkviz.worlds.toy.generator_net import ToyGenerator


def decoded(image_bytes: bytes) -> np.ndarray:
    return np.asarray(Image.open(io.BytesIO(image_bytes)).convert("RGB"))


# --- LatestWinsWorker ---


def test_worker_runs_only_the_newest_pending_request_and_delivers_it():
    results, errors, ran = [], [], []
    started, release = threading.Event(), threading.Event()
    worker = LatestWinsWorker(results.append, errors.append)

    def task(number):
        def run():
            ran.append(number)
            if number == 0:
                started.set()
                release.wait(5)
            return number
        return run

    worker.submit(task(0))
    assert started.wait(5)
    for number in range(1, 5):
        worker.submit(task(number))
    release.set()
    assert worker.wait_idle(5)
    assert ran == [0, 4]  # 1..3 were replaced before they started
    assert results == [4]  # 0 finished after newer requests arrived: stale, dropped
    assert errors == [] and worker.n_dropped == 4 and not worker.busy  # 1..3 replaced, 0 stale


def test_worker_reports_errors_instead_of_swallowing_them():
    results, errors = [], []
    worker = LatestWinsWorker(results.append, errors.append)
    worker.submit(lambda: 1 / 0)
    assert worker.wait_idle(5)
    assert isinstance(errors[0], ZeroDivisionError) and isinstance(worker.last_error, ZeroDivisionError)
    worker.submit(lambda: "fine")
    assert worker.wait_idle(5) and results == ["fine"]


def test_worker_routes_a_failing_result_callback_to_the_error_callback():
    errors = []

    def broken(result):
        raise RuntimeError("cannot show")

    worker = LatestWinsWorker(broken, errors.append)
    worker.submit(lambda: 1)
    assert worker.wait_idle(5)
    assert [str(e) for e in errors] == ["cannot show"]


# --- LinkedModel ---


def test_build_linked_model_fits_on_all_pairs_of_an_unconditional_world(linked, fake_world):
    assert isinstance(linked, LinkedModel)
    assert len(linked.pairs) == 8 * 3  # samples_per_class x classes, drawn as class 0
    assert linked.link.r_dim == linked.stats.n_units == 3 and linked.link.w_dim == fake_world.generator.w_dim
    np.testing.assert_allclose(linked.stats.max, linked.pairs.r.max(axis=0), rtol=1e-6)
    assert linked.class_names == ("red", "green", "blue")
    assert linked.render(linked.pairs.w[:2]).shape == (2, 8, 8, 3)
    with pytest.raises(IndexError, match="out of range"):
        linked.check_example(24)


# --- UnitTuner ---


def test_slider_release_costs_one_generator_pass_and_updates_image_and_label(linked):
    tuner = UnitTuner(linked, seeds=(0, 1, 2), unit=0)
    first = tuner.image.value
    assert decoded(first).shape == ((2 * 9 - 1) * 16, (3 * 9 - 1) * 16, 3)  # 8 px tiles, 1 px gaps, zoom 16
    generator = linked.generator
    calls = generator.calls
    high = float(linked.stats.max[0])
    tuner.value.value = high
    assert tuner.worker.wait_idle(5)
    assert generator.calls == calls + 1
    assert tuner.image.value != first
    assert f"value <b>{high:.3g}</b>" in tuner.label.value and tuner.error.value == ""
    assert tuner.shown.value == pytest.approx(high) and tuner.shown.unit == 0
    # the bottom row shows what linking the fully perturbed r gives (up to JPEG)
    r = torch.as_tensor(linked.pairs.r[:3])
    expected = linked.render(linked.link.to_w(SetUnits(0, high).apply(r)))
    bottom = decoded(tuner.image.value)[9 * 16:, :8 * 16]  # second row, first column
    assert np.abs(bottom[8:-8, 8:-8].astype(int) - expected[0, 0, 0]).mean() < 8


def test_unit_change_resets_the_slider_to_the_units_range(linked):
    tuner = UnitTuner(linked, seeds=(0, 1), unit=0)
    tuner.unit.value = 2
    assert tuner.worker.wait_idle(5)
    stats = linked.stats
    assert (tuner.value.min, tuner.value.max) == pytest.approx((stats.min[2], stats.max[2]))
    assert tuner.value.value == pytest.approx(stats.mean[2])
    assert "unit <b>2</b>" in tuner.label.value and tuner.shown.unit == 2
    assert tuner.strongest.value == 2  # listed among the strongest units
    tuner.strongest.value = int(np.argmin(tuner.effect))
    assert tuner.worker.wait_idle(5)
    assert tuner.unit.value == tuner.shown.unit == int(np.argmin(tuner.effect))


def test_invalid_unit_and_seeds_are_rejected_with_a_visible_error(linked):
    tuner = UnitTuner(linked, seeds=(0, 1), unit=1)
    before = tuner.image.value
    tuner.unit.value = 99
    assert "IndexError" in tuner.error.value and "out of range" in tuner.error.value
    assert not tuner.worker.busy and tuner.image.value == before and tuner.shown.unit == 1
    tuner.unit.value = 0
    assert tuner.worker.wait_idle(5) and tuner.error.value == ""
    tuner.seeds.value = "0, x"
    assert "comma-separated" in tuner.error.value
    tuner.seeds.value = "0, 24"
    assert "seeds [24] out of range" in tuner.error.value
    tuner.seeds.value = "3"
    assert tuner.worker.wait_idle(5)
    assert tuner.error.value == "" and tuner.shown.seeds == (3,)
    assert decoded(tuner.image.value).shape[1] == 8 * 16  # one column now
    with pytest.raises(IndexError):
        UnitTuner(linked, unit=3)


def test_static_snapshot_for_exported_notebooks(linked):
    bundle = UnitTuner(linked, seeds=(0,))._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith('<img src="data:image/jpeg;base64,')
    assert "effect size" in bundle["text/html"]


def test_on_an_untrained_toy_world():
    torch.manual_seed(0)
    generator = ToyGenerator().eval()
    generator.update_w_avg(samples_per_class=4, seed=0)
    world = ToyWorld(classifier=Classifier(ToyResNet().eval(), TOY_CLASSIFIER_SPEC), generator=generator)
    linked = build_linked_model(world, samples_per_class=2, accepted_only=False)
    assert len(linked.pairs) == 10 and linked.link.r_dim == linked.stats.n_units
    strongest = int(np.argmax(effect_sizes(linked.link, linked.stats)))
    tuner = UnitTuner(linked, seeds=(0, 1), unit=strongest)
    first = tuner.image.value
    tuner.value.value = tuner.value.max
    assert tuner.worker.wait_idle(30)
    assert tuner.error.value == "" and tuner.image.value != first


# --- defaults: the strongest unit, seeds across the classes ---


@pytest.fixture
def wide_linked(linked) -> LinkedModel:
    """The fake world's pairs with 30 units of r (more than the strongest menu lists), linked to its 3-dim w."""
    rng = np.random.default_rng(0)
    r = np.abs(rng.normal(size=(len(linked.pairs), 30))).astype(np.float32)
    pairs = dataclasses.replace(linked.pairs, r=r)
    link = LinearLink(weight=(0.1 * rng.normal(size=(3, 30))).astype(np.float32), bias=np.full(3, 2, np.float32))
    return dataclasses.replace(linked, link=link, pairs=pairs, stats=UnitStats.from_activations(r))


def test_opens_on_the_strongest_unit_with_the_menu_showing_it(linked):
    tuner = UnitTuner(linked)
    strongest = int(np.argmax(tuner.effect))
    assert tuner.unit.value == tuner.shown.unit == strongest
    assert tuner.strongest.value == strongest  # selected in the menu, not blank
    assert f"unit <b>{strongest}</b>" in tuner.label.value and "(rank 1 of" in tuner.label.value


def test_a_unit_outside_the_strongest_joins_the_menu_selected(wide_linked):
    tuner = UnitTuner(wide_linked)
    strongest, weakest = int(np.argmax(tuner.effect)), int(np.argmin(tuner.effect))
    assert tuner.strongest.value == tuner.shown.unit == strongest and len(tuner.strongest.options) == 20
    tuner.unit.value = weakest
    assert tuner.worker.wait_idle(5) and tuner.shown.unit == weakest
    assert tuner.strongest.value == weakest and "(rank 30)" in tuner.strongest.label
    assert tuner.unit.value == weakest  # rebuilding the menu did not move the unit
    tuner.strongest.value = strongest
    assert tuner.worker.wait_idle(5) and tuner.shown.unit == tuner.unit.value == strongest
    assert len(tuner.strongest.options) == 20
    assert UnitTuner(wide_linked, unit=weakest).strongest.value == weakest


def test_default_seeds_span_the_classes_and_the_classes_menu_picks_them(linked):
    predicted = linked.pairs.predicted
    tuner = UnitTuner(linked)
    assert tuner.shown.seeds == linked.example_seeds(4) and len(set(predicted[list(tuner.shown.seeds)])) == 3
    assert tuner.classes.value == () and tuner.classes.options[0][0].startswith("red (")
    tuner.classes.value = (2,)
    assert tuner.worker.wait_idle(5) and tuner.error.value == ""
    assert len(tuner.shown.seeds) == 4 and set(predicted[list(tuner.shown.seeds)]) == {2}
    assert tuner.seeds.value == ", ".join(map(str, tuner.shown.seeds))
    tuner.seeds.value = "3, 1"  # typed seeds still work, and set how many the menu picks next
    assert tuner.worker.wait_idle(5) and tuner.shown.seeds == (3, 1)
    tuner.classes.value = (0, 1)
    assert tuner.worker.wait_idle(5) and tuner.shown.seeds == linked.example_seeds(2, classes=[0, 1])
    green = UnitTuner(linked, classes=["green"])
    assert green.classes.value == (1,) and set(predicted[list(green.shown.seeds)]) == {1}
    with pytest.raises(ValueError, match="not both"):
        UnitTuner(linked, seeds=(0,), classes=["red"])
