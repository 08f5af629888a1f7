"""Region features and explainer training: hand-checked pooling, merged masks, seeds, BatchNorm modes, errors."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from planted_colours import COLOURS

from linkviz.dissection import ProbeDataset
from linkviz.lavise import OutOfVocabularyError, SemanticSpace, region_features, train_explainer
from linkviz.models import LayerNotFoundError


def test_region_features_by_hand(planted_model, planted_probe, planted_space):
    regions = region_features(planted_model, "2", planted_probe, planted_space, progress=False)
    assert regions.features.shape == (2 * len(planted_probe), 3)  # two squares per image
    assert regions.label_words == COLOURS and regions.concepts == tuple(f"{c}-c" for c in COLOURS)
    np.testing.assert_array_equal(regions.targets.sum(1), 1)
    np.testing.assert_allclose(regions.label_vectors, planted_space.vectors[:6])
    labels = planted_probe.pixel_labels["color"][:, 0]
    for row in (0, 1, 17):
        image, colour = regions.image_index[row], int(np.argmax(regions.targets[row]))
        square = labels[image] == colour + 1
        # each 4x4 square covers exactly 2x2 cells of the 8x8 pooled map, so
        # pooled = (sum of the square's pixels / 4) / 64 per channel
        expected = planted_probe.images[image][square].sum(0) / 255.0 / 256.0
        np.testing.assert_allclose(regions.features[row], expected, rtol=1e-5)


def test_identical_masks_merge_into_one_region():
    labels = np.zeros((2, 1, 4, 4), np.int64)
    labels[:, 0, :2, :2] = 1  # "cap"
    colours = np.zeros((2, 1, 4, 4), np.int64)
    colours[0, 0, :2, :2] = 2  # image 0: the cap is exactly the red region
    colours[1, 0, :2, :1] = 2  # image 1: only half of it
    probe = ProbeDataset(images=np.full((2, 4, 4, 3), 200, np.uint8), label_names=("-", "cap", "red-c"),
                         categories=("part", "color"), pixel_labels={"part": labels, "color": colours})
    space = SemanticSpace(("cap", "red", "sky"), np.eye(3))
    model = torch.nn.Sequential(torch.nn.Identity())
    regions = region_features(model, "0", probe, space, progress=False)
    assert regions.image_index.tolist() == [0, 1, 1]
    assert regions.targets.tolist() == [[True, True], [True, False], [False, True]]


def test_bad_concepts_and_layers(planted_model, planted_probe, planted_space):
    with pytest.raises(LayerNotFoundError, match="no layer named 'layer4'"):
        train_explainer(planted_model, "layer4", planted_probe, planted_space, seed=0, progress=False)
    assert not any(m._forward_hooks for m in planted_model.modules())
    with pytest.raises(ValueError, match="unknown concept names"):
        region_features(planted_model, "2", planted_probe, planted_space, concepts=["purple-c"], progress=False)
    small = SemanticSpace(("red", "green"), np.eye(2), name="two colours")
    with pytest.raises(OutOfVocabularyError, match="'blue-c' -> \\['blue'\\]"):
        region_features(planted_model, "2", planted_probe, small, progress=False)
    empty = ProbeDataset(images=planted_probe.images, label_names=planted_probe.label_names + ("purple-c",),
                         categories=("color",), pixel_labels=planted_probe.pixel_labels)
    with pytest.raises(ValueError, match=r"\['purple-c'\] have an empty mask"):
        region_features(planted_model, "2", empty, planted_space, concepts=["red-c", "purple-c"], progress=False)
    with pytest.raises(ValueError, match="unknown categories"):
        region_features(planted_model, "2", planted_probe, planted_space, categories=["object"], progress=False)


def test_seeded_training_leaves_model_and_global_rng_alone(planted_model, planted_probe, planted_space):
    regions = region_features(planted_model, "2", planted_probe, planted_space, progress=False)
    before = {k: v.clone() for k, v in planted_model.state_dict().items()}
    rng_state = torch.random.get_rng_state()
    options = {"epochs": 3, "batch_size": 16, "learning_rate": 1e-2, "progress": False, "regions": regions}
    first = train_explainer(planted_model, "2", planted_probe, planted_space, seed=1, **options)
    again = train_explainer(planted_model, "2", planted_probe, planted_space, seed=1, **options)
    other = train_explainer(planted_model, "2", planted_probe, planted_space, seed=2, **options)
    assert torch.equal(torch.random.get_rng_state(), rng_state)
    for name, value in planted_model.state_dict().items():
        assert torch.equal(value, before[name])
    weights = [dict(e.head.state_dict()) for e in (first, again, other)]
    assert all(torch.equal(weights[0][k], weights[1][k]) for k in weights[0])
    assert not torch.equal(weights[0]["2.weight"], weights[2]["2.weight"])
    assert len(first.train_loss) == len(first.val_loss) == 3 and first.val_loss[first.best_epoch] == min(first.val_loss)
    assert first.n_samples == 96 and not first.head.training and first.space_name == "planted"


def test_batchnorm_modes(planted_model, planted_probe, planted_space):
    regions = region_features(planted_model, "2", planted_probe, planted_space, progress=False)
    options = {"seed": 0, "epochs": 2, "batch_size": 16, "val_fraction": 0.0, "progress": False,
               "regions": regions}
    frozen = train_explainer(planted_model, "2", planted_probe, planted_space, batchnorm="frozen", **options)
    for layer in (frozen.head[0], frozen.head[4]):  # the released code's set_bn_eval: statistics stay (0, 1)
        assert torch.equal(layer.running_mean, torch.zeros_like(layer.running_mean))
        assert torch.equal(layer.running_var, torch.ones_like(layer.running_var))
        assert int(layer.num_batches_tracked) == 0
    assert not torch.equal(frozen.head[0].weight, torch.ones(3))  # the affine part trains
    batch = train_explainer(planted_model, "2", planted_probe, planted_space, batchnorm="batch", **options)
    assert int(batch.head[0].num_batches_tracked) > 0
    np.testing.assert_allclose(batch.head[0].running_mean.numpy(), regions.features.mean(0), rtol=0.5)
    with pytest.raises(ValueError, match="batchnorm"):
        train_explainer(planted_model, "2", planted_probe, planted_space, batchnorm="eval", **options)


def test_restricting_concepts_drops_their_words(planted_model, planted_probe, planted_space):
    regions = region_features(planted_model, "2", planted_probe, planted_space, progress=False)
    explainer = train_explainer(planted_model, "2", planted_probe, planted_space, seed=0, epochs=1,
                                concepts=["green-c", "blue-c"], regions=regions, progress=False)
    assert explainer.label_words == ("green", "blue") and explainer.concepts == ("green-c", "blue-c")
    green_or_blue = regions.targets[:, 1:3].any(1).sum()
    assert explainer.n_samples == green_or_blue
