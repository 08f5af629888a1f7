"""WorldBrowsing without ipywidgets: on the toy world (against its own class_samples), and on fake worlds with and
without ground truth (unconditional generators: samples are searched for with the classifier)."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pytest
import torch
from fake_world import FakeGenerator, FakeWorld, fake_classifier
from matplotlib.figure import Figure

from linkviz.controllers import WorldBrowsing, WorldSamplesView
from linkviz.images import to_uint8
from linkviz.models.classifier import Classifier
from linkviz.world import GroundTruthWorld, World
from linkviz.worlds.toy import TOY_CLASSIFIER_SPEC, ToyWorld
from linkviz.worlds.toy.classifier_net import ToyResNet
from linkviz.worlds.toy.evaluation import class_samples
from linkviz.worlds.toy.generator_net import ToyGenerator


@pytest.fixture(scope="module")
def toy_world() -> ToyWorld:
    torch.manual_seed(0)
    generator = ToyGenerator().eval()
    generator.update_w_avg(samples_per_class=16, seed=0)
    return ToyWorld(classifier=Classifier(ToyResNet().eval(), TOY_CLASSIFIER_SPEC), generator=generator)


@dataclass(frozen=True)
class PaintedWorld(FakeWorld):
    """The fake world with a ground truth: sample k should be painted in the colour of its strongest z."""

    @property
    def part_names(self) -> tuple[str, ...]:
        return ("background",)

    def true_parts(self, z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        return np.zeros((len(z), 8, 8), np.int64)

    def true_images(self, z: torch.Tensor, c: torch.Tensor) -> np.ndarray:
        images = np.zeros((len(z), 8, 8, 3), np.uint8)
        images[np.arange(len(z)), :, :, z.argmax(1).cpu().numpy()] = 255
        return images


def fake_predictions(z: torch.Tensor) -> np.ndarray:
    """The fake classifier's class of G(z) (w = 2 + z): argmax relu(4 tanh(w / 4)), by hand."""
    return np.maximum(4 * np.tanh((2.0 + z.numpy()) / 4), 0).argmax(1)


def test_toy_world_samples_match_class_samples(toy_world):
    assert isinstance(toy_world, GroundTruthWorld)
    browsing = WorldBrowsing(toy_world, n_samples=4)
    assert browsing.has_ground_truth and browsing.class_names == toy_world.class_names
    view = browsing.compute("house", 0.6, 3)
    label = toy_world.class_names.index("house")
    expected = class_samples(toy_world.generator, toy_world.classifier, np.full(4, label), truncation_psi=0.6,
                             seed=3)
    np.testing.assert_array_equal(view.generated, expected.generated)
    np.testing.assert_array_equal(view.rendered, expected.rendered)
    np.testing.assert_array_equal(view.predicted, expected.predicted)
    assert view.class_index == label and view.labels.tolist() == [label] * 4 and view.draws.tolist() == [0, 1, 2, 3]
    assert view.grid.shape == (2 * (64 + 2) * 2 - 4, 4 * (64 + 2) * 2 - 4, 3) and view.rows == 2
    agree = int((expected.predicted == label).sum())
    assert view.agreement == agree and f"{agree}/4" in view.caption and "house" in view.caption

    frame = view.to_frame()
    assert len(frame) == 4 and set(frame["class"]) == {"house"} and frame["ground_truth"].all()
    assert frame["predicted"].tolist() == [toy_world.class_names[p] for p in expected.predicted]
    assert frame["agrees"].sum() == agree and set(frame["seed"]) == {3}

    # the same controls give the same view; another class or seed another one
    np.testing.assert_array_equal(browsing.compute(label, 0.6, 3).grid, view.grid)
    assert not np.array_equal(browsing.compute("house", 0.6, 4).generated, view.generated)


def test_world_without_ground_truth_searches_samples_of_the_class():
    world = FakeWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))
    assert isinstance(world, World) and not isinstance(world, GroundTruthWorld)
    browsing = WorldBrowsing(world, n_samples=3)
    assert not browsing.has_ground_truth
    view = browsing.compute("blue", 1.0, 5)
    z = torch.randn(3 * 16, 3, generator=torch.Generator().manual_seed(5))
    hits = np.flatnonzero(fake_predictions(z) == 2)[:3]
    assert len(hits) == 3
    np.testing.assert_array_equal(view.draws, hits)
    assert view.predicted.tolist() == [2, 2, 2] and view.agreement == 3
    np.testing.assert_array_equal(view.generated, to_uint8(torch.tanh((2.0 + z[hits]) / 4)[:, :, None, None]
                                                           .expand(-1, 3, 8, 8).numpy()))
    assert view.rendered is None and view.rows == 1 and view.row_labels == ("generated",)
    assert view.grid.shape == ((8) * 2, 3 * (8 + 2) * 2 - 4, 3)
    assert "unconditional" in view.caption and "no ground truth" in view.caption
    assert not view.to_frame()["ground_truth"].any()

    figure = view.figure()
    assert isinstance(figure, Figure)
    rows, columns = ([t.get_text() for t in figure.axes[0].get_yticklabels()],
                     [t.get_text() for t in figure.axes[0].get_xticklabels()])
    assert rows == ["generated"] and columns == ["says blue"] * 3


def test_ground_truth_row_of_any_ground_truth_world(axis_labels):
    world = PaintedWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))
    assert isinstance(world, GroundTruthWorld)
    view = WorldBrowsing(world, n_samples=2).compute(0, 1.0, 0)
    z = torch.randn(2 * 16, 3, generator=torch.Generator().manual_seed(0))
    np.testing.assert_array_equal(view.rendered, world.true_images(z[view.draws], None))
    assert view.rows == 2 and isinstance(view, WorldSamplesView)
    rows, columns = axis_labels(view.figure())
    assert rows == ["generated", "ground truth"] and len(columns) == 2


def test_unknown_classes_and_bad_arguments():
    world = FakeWorld(classifier=fake_classifier(), generator=FakeGenerator(offset=2.0))
    browsing = WorldBrowsing(world, n_samples=2)
    with pytest.raises(ValueError, match="unknown class 'purple'"):
        browsing.compute("purple", 1.0, 0)
    with pytest.raises(IndexError, match="class 3 out of range"):
        browsing.compute(3, 1.0, 0)
    with pytest.raises(ValueError, match="seed must be non-negative"):
        browsing.compute(0, 1.0, -1)
    with pytest.raises(ValueError, match="n_samples must be positive"):
        WorldBrowsing(world, n_samples=0)
    with pytest.raises(TypeError, match="is not a World"):
        WorldBrowsing(object())
