"""WorldBrowser driven through its traits, on an untrained world (mechanics, not model quality)."""

import io

import numpy as np
import pytest
import torch
from PIL import Image

from linkviz.models.classifier import Classifier
from linkviz.widgets import WorldBrowser
from linkviz.worlds.toy import CLASS_NAMES, TOY_CLASSIFIER_SPEC, ToyWorld
from linkviz.worlds.toy.classifier_net import ToyResNet
from linkviz.worlds.toy.generator_net import ToyGenerator


@pytest.fixture(scope="module")
def world():
    torch.manual_seed(0)
    generator = ToyGenerator().eval()
    generator.update_w_avg(samples_per_class=16, seed=0)
    return ToyWorld(classifier=Classifier(ToyResNet().eval(), TOY_CLASSIFIER_SPEC), generator=generator)


def shown(browser):
    return np.asarray(Image.open(io.BytesIO(browser.image.value)))


def test_controls_drive_the_shown_samples(world):
    browser = WorldBrowser(world, n_samples=4, seed=3)
    first = shown(browser)
    assert first.shape == (2 * (64 + 2) * 2 - 4, 4 * (64 + 2) * 2 - 4, 3)
    assert "mushroom" in browser.summary.value

    browser.class_picker.value = "house"
    assert "house" in browser.summary.value
    assert browser.samples.labels.tolist() == [CLASS_NAMES.index("house")] * 4
    assert not np.array_equal(shown(browser), first)

    houses = browser.samples.generated.copy()
    browser.seed.value = 4
    assert not np.array_equal(browser.samples.generated, houses)


def test_zero_truncation_collapses_samples_to_the_class_average(world):
    browser = WorldBrowser(world, n_samples=3)
    browser.truncation.value = 0.0
    generated = browser.samples.generated
    assert np.array_equal(generated[0], generated[1]) and np.array_equal(generated[1], generated[2])
    # the ground-truth renders still differ: truncation changes w, not the factor records
    assert not np.array_equal(browser.samples.rendered[0], browser.samples.rendered[1])


def test_static_snapshot_for_exported_notebooks(world):
    browser = WorldBrowser(world, n_samples=2)
    bundle = browser._repr_mimebundle_()
    assert "application/vnd.jupyter.widget-view+json" in bundle
    assert bundle["text/html"].startswith("<img src=\"data:image/png;base64,")
    assert "classified" in bundle["text/html"]
