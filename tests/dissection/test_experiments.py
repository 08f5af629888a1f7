"""Seed-slide experiments on synthetic layers with known answers: probe perturbations, detector robustness,
rotated unit bases, and PCA loadings of concepts."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.dissection import ProbeDataset, dissect
from linkviz.dissection.activations import layer_activations
from linkviz.dissection.axis_alignment import (
    axis_alignment,
    fractional_rotation,
    random_rotation,
    rotated_units,
)
from linkviz.dissection.concept_pca import concept_pca
from linkviz.dissection.probe_perturbations import AddNoise, Rotate, ShufflePatches, slide_perturbations
from linkviz.dissection.robustness import detector_robustness
from linkviz.dissection.tally import upsample

PALETTE = np.array([[255, 0, 0], [0, 255, 0], [0, 0, 255], [255, 255, 0]], np.uint8)
SIDES = (2, 3, 4, 5)  # patch side of each colour concept: distinct areas, so no IoU ties
QUANTILE = 0.3  # above the area of all concepts together (54 / 256 pixels), so the threshold is exactly 0


@pytest.fixture
def palette_probe() -> ProbeDataset:
    """12 black 16x16 images; each holds one patch of every palette colour, in its own quadrant."""
    rng = np.random.default_rng(0)
    images = np.zeros((12, 16, 16, 3), np.uint8)
    labels = np.zeros((12, 1, 16, 16), np.int64)
    for i in range(12):
        for concept, quadrant in enumerate(rng.permutation(4)):
            side = SIDES[concept]
            top = 8 * (quadrant // 2) + rng.integers(0, 9 - side)
            left = 8 * (quadrant % 2) + rng.integers(0, 9 - side)
            images[i, top:top + side, left:left + side] = PALETTE[concept]
            labels[i, 0, top:top + side, left:left + side] = concept + 1
    names = ("-", "red-c", "green-c", "blue-c", "yellow-c")
    return ProbeDataset(images=images, label_names=names, categories=("color",), pixel_labels={"color": labels})


class PaletteDetectors(nn.Module):
    """Unit k is 1 exactly where the pixel has palette colour k (an exact concept detector), else 0."""

    def __init__(self) -> None:
        super().__init__()
        self.register_buffer("palette", torch.from_numpy(PALETTE).float() / 255)
        self.units = nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        distance = (x[:, None] - self.palette[None, :, :, None, None]).abs().sum(2)
        return self.units((distance < 0.02).float()).mean((2, 3))


def palette_dissect(model, probe, **options):
    return dissect(model, "units", probe, quantile=QUANTILE, progress=False, top_k=0, **options)


# ---------------------------------------------------------------- probe perturbations

def test_noise_of_zero_is_the_identity_and_noise_is_seeded(palette_probe):
    same = AddNoise(0.0, seed=3)(palette_probe)
    np.testing.assert_array_equal(same.images, palette_probe.images)
    noisy = AddNoise(5.0, seed=3)(palette_probe)
    np.testing.assert_array_equal(noisy.images, AddNoise(5.0, seed=3)(palette_probe).images)
    assert not np.array_equal(noisy.images, AddNoise(5.0, seed=4)(palette_probe).images)
    # rescaled: (x + 5u) / 6 stays within [0, 1] with mean about (x + 2.5) / 6
    expected = (palette_probe.images / 255 + 2.5) / 6 * 255
    assert abs(noisy.images.mean() - expected.mean()) < 2
    clipped = AddNoise(1.0, seed=3, range_mode="clip")(palette_probe)
    assert (clipped.images >= palette_probe.images).all()
    np.testing.assert_array_equal(noisy.pixel_labels["color"], palette_probe.pixel_labels["color"])
    with pytest.raises(ValueError, match="non-negative"):
        AddNoise(-1.0, seed=0)


def test_rotation_by_90_degrees_is_rot90_of_images_and_labels(palette_probe):
    rotated = Rotate(90)(palette_probe)
    np.testing.assert_array_equal(rotated.images, np.rot90(palette_probe.images, 1, axes=(1, 2)))
    np.testing.assert_array_equal(rotated.pixel_labels["color"],
                                  np.rot90(palette_probe.pixel_labels["color"], 1, axes=(2, 3)))
    np.testing.assert_array_equal(Rotate(0)(palette_probe).images, palette_probe.images)
    tilted = Rotate(45)(palette_probe)
    assert tilted.images[:, 0, 0].max() == 0 and tilted.pixel_labels["color"][:, :, 0, 0].max() == 0  # corners
    np.testing.assert_array_equal(tilted.primary_categories(), palette_probe.primary_categories())


def test_patch_shuffle_moves_labels_with_pixels(palette_probe):
    shuffled = ShufflePatches(4, seed=0)(palette_probe)
    assert not np.array_equal(shuffled.images, palette_probe.images)
    # the labels still mark the coloured pixels
    for concept in range(4):
        marked = shuffled.pixel_labels["color"][:, 0] == concept + 1
        assert (shuffled.images[marked] == PALETTE[concept]).all()
        assert marked.sum() == (palette_probe.pixel_labels["color"] == concept + 1).sum()

    def patches(images):  # every image's 4x4 patches, as a sorted list of byte strings
        return [sorted(image[r:r + 4, c:c + 4].tobytes() for r in range(0, 16, 4) for c in range(0, 16, 4))
                for image in images]

    assert patches(shuffled.images) == patches(palette_probe.images)
    with pytest.raises(ValueError, match="must divide"):
        ShufflePatches(5, seed=0)(palette_probe)
    assert [p.name for p in slide_perturbations(seed=0)] == ["noise"] * 4 + ["rotation"] * 3 + ["patches"] * 2


# ---------------------------------------------------------------- detector robustness

def test_robustness_of_a_pixelwise_detector_layer(palette_probe):
    model = PaletteDetectors()
    perturbations = (AddNoise(0.0, seed=0), Rotate(90), ShufflePatches(4, seed=1), AddNoise(1.0, seed=0))
    result = detector_robustness(model, "units", palette_probe, perturbations, quantile=QUANTILE, progress=False)
    baseline = result.baseline
    np.testing.assert_array_equal(baseline.unit_iou, np.ones(4))  # exact detectors
    assert baseline.unique_detectors() == 4
    for unchanged in result.results[:3]:  # no noise; labels move with pixels and the layer is pixelwise
        np.testing.assert_array_equal(unchanged.iou, baseline.iou)
    assert result.results[3].unique_detectors() == 0  # noise moves every colour off the palette
    summary = result.summary()
    assert summary.perturbation.tolist() == ["none", "noise", "rotation", "patches", "noise"]
    assert summary.strength.tolist() == [0.0, 0.0, 90.0, 4.0, 1.0]
    assert summary.unique_detectors.tolist() == [4, 4, 4, 4, 0]
    assert summary.kept_detectors.tolist() == [4, 4, 4, 4, 0]
    frame = result.to_frame()
    assert len(frame) == 5 * 4 and frame.same_label[:16].all()
    by_category = result.by_category()
    assert by_category.unique_detectors.tolist() == [4, 4, 4, 4]


# ---------------------------------------------------------------- axis-aligned interpretability

def test_random_and_fractional_rotations():
    q = random_rotation(6, seed=0)
    np.testing.assert_allclose(q @ q.T, np.eye(6), atol=1e-12)
    assert np.linalg.det(q) == pytest.approx(1.0)
    np.testing.assert_array_equal(q, random_rotation(6, seed=0))
    half = fractional_rotation(q, 0.5)
    np.testing.assert_allclose(half @ half, q, atol=1e-10)
    np.testing.assert_allclose(half @ half.T, np.eye(6), atol=1e-10)
    np.testing.assert_array_equal(fractional_rotation(q, 0.0), np.eye(6))
    with pytest.raises(ValueError, match="orthogonal"):
        fractional_rotation(np.ones((3, 3)), 0.5)


def test_identity_rotation_keeps_and_permutation_permutes_detectors(palette_probe):
    model = PaletteDetectors()
    baseline = palette_dissect(model, palette_probe)
    with rotated_units(model, "units", np.eye(4)):
        same = palette_dissect(model, palette_probe)
    np.testing.assert_array_equal(same.iou, baseline.iou)
    permutation = np.eye(4)[[2, 0, 3, 1]]  # new unit j is old unit permutation[j]
    with rotated_units(model, "units", permutation):
        permuted = palette_dissect(model, palette_probe)
    np.testing.assert_array_equal(permuted.unit_labels, baseline.unit_labels[[2, 0, 3, 1]])
    assert permuted.unique_detectors() == 4
    assert not any(m._forward_hooks for m in model.modules())


def test_rotated_units_is_an_edit_through_hooks(palette_probe):
    """Inside the block the layer outputs rotation @ a at every position; a wrong-size rotation fails at the
    forward pass with a clear message, and no hook is left behind either way."""
    model = PaletteDetectors()
    images = palette_probe.images[:3]
    plain = layer_activations(model, "units", images)
    rotation = random_rotation(4, seed=1)
    with rotated_units(model, "units", rotation):
        rotated = layer_activations(model, "units", images)
    expected = torch.einsum("ij,njhw->nihw", torch.as_tensor(rotation, dtype=torch.float32), plain)
    torch.testing.assert_close(rotated, expected)
    with (pytest.raises(ValueError, match=r"a 3-unit rotation needs \[N, 3, ...\]"),
          rotated_units(model, "units", np.eye(3))):
        layer_activations(model, "units", images)
    assert not any(m._forward_hooks for m in model.modules())


def test_random_rotation_mixes_detectors_as_predicted(palette_probe):
    """Rotated unit j is on exactly on the concepts with a positive coefficient Q[j, k] (the threshold stays 0),
    so its best IoU is the largest such concept's area over their total area."""
    model = PaletteDetectors()
    rotation = random_rotation(4, seed=0)
    with rotated_units(model, "units", rotation):
        rotated = palette_dissect(model, palette_probe)
    areas = np.array([(palette_probe.pixel_labels["color"] == k + 1).sum() for k in range(4)], float)
    for j in range(4):
        positive = rotation[j] > 1e-6
        expected = areas[positive].max() / areas[positive].sum() if positive.any() else 0.0
        assert rotated.unit_iou[j] == pytest.approx(expected, abs=1e-12)
        assert rotated.unit_labels[j] == (1 + np.argmax(np.where(positive, areas, -1)) if positive.any() else 0)
    # for this rotation two units pick the same concept: 3 unique detectors instead of 4, mean IoU 0.68
    assert rotated.unique_detectors() == 3 and rotated.unit_iou.mean() < 0.7


def test_axis_alignment_tables_and_hook_removal(palette_probe):
    model = PaletteDetectors()
    result = axis_alignment(model, "units", palette_probe, alphas=(0.5, 1.0), seeds=(0, 1), quantile=QUANTILE,
                            progress=False)
    frame = result.to_frame()
    assert frame[["alpha", "seed"]].values.tolist() == [[0, -1], [0.5, 0], [1, 0], [0.5, 1], [1, 1]]
    assert frame.unique_detectors[0] == 4 and frame.mean_detector_iou[0] == 1.0
    assert (frame.mean_detector_iou[1:] <= 1.0).all()
    summary = result.summary()
    assert summary.alpha.tolist() == [0.0, 0.5, 1.0] and summary.rotations.tolist() == [1, 2, 2]
    assert not any(m._forward_hooks for m in model.modules())
    with pytest.raises(ValueError, match="cache_dir"):
        axis_alignment(model, "units", palette_probe, cache_dir="somewhere", progress=False)
    # wrong size: the hook raises, and is still removed
    with pytest.raises(ValueError, match="units"), rotated_units(model, "units", np.eye(3)):
        palette_dissect(model, palette_probe)
    assert not any(m._forward_hooks for m in model.modules())


# ---------------------------------------------------------------- PCA loadings of concepts

@pytest.fixture
def two_concept_probe() -> ProbeDataset:
    """16 noisy 16x16 images with a red square ("square") and a green bar ("bar")."""
    rng = np.random.default_rng(2)
    images = rng.integers(0, 60, (16, 16, 16, 3)).astype(np.uint8)
    labels = np.zeros((16, 1, 16, 16), np.int64)
    for i in range(16):
        r, c = rng.integers(0, 11, 2)
        images[i, r:r + 5, c:c + 5, 0] = rng.integers(200, 256, (5, 5))
        labels[i, 0, r:r + 5, c:c + 5] = 1
        r = rng.integers(0, 13)
        images[i, r:r + 3, :, 1] = rng.integers(200, 256, (3, 16))
        labels[i, 0, r:r + 3, :][labels[i, 0, r:r + 3, :] == 0] = 2
    return ProbeDataset(images=images, label_names=("-", "square", "bar"), categories=("object",),
                        pixel_labels={"object": labels})


def channel_model() -> nn.Sequential:
    """1x1 conv: units 0 and 1 read green (the bar), unit 2 reads red (the square), unit 3 reads blue (noise)."""
    conv = nn.Conv2d(3, 4, 1)
    with torch.no_grad():
        conv.weight.zero_()
        conv.bias.zero_()
        conv.weight[0, 1] = 1.0
        conv.weight[1, 1] = 0.8
        conv.weight[2, 0] = 1.0
        conv.weight[3, 2] = 1.0
    return nn.Sequential(conv)


def test_pca_loadings_find_the_unit_or_the_combination(two_concept_probe):
    result = concept_pca(channel_model(), "0", two_concept_probe, ["square", "bar"], n_components=2,
                         progress=False)
    summary = result.summary().set_index("concept")
    assert summary.loc["square", "top_unit"] == 2 and summary.loc["square", "top_share"] > 0.9
    assert summary.loc["square", "effective_units"] < 1.2  # one unit carries the square
    assert set(np.argsort(-np.abs(result.loadings[1, 0]))[:2]) == {0, 1}
    assert 1.8 < summary.loc["bar", "effective_units"] < 2.2  # the bar lives in a combination of two units
    np.testing.assert_allclose(np.linalg.norm(result.loadings, axis=2), 1.0)
    assert result.n_pixels.tolist() == [int((two_concept_probe.pixel_labels["object"] == k).sum()) for k in (1, 2)]
    frame = result.to_frame()
    assert len(frame) == 2 * 2 * 4 and list(frame.columns) == ["concept", "component", "unit", "loading",
                                                               "explained_variance_ratio"]


def test_pca_matches_an_explicit_svd(two_concept_probe):
    model = channel_model()
    result = concept_pca(model, "0", two_concept_probe, [2], progress=False)
    maps = upsample(layer_activations(model, "0", two_concept_probe.images), (16, 16))
    rows = maps.permute(0, 2, 3, 1).reshape(-1, 4).double().numpy()
    z = (rows - rows.mean(0)) / rows.std(0)
    concept = (two_concept_probe.pixel_labels["object"][:, 0] == 2).reshape(-1)
    _, singular, vt = np.linalg.svd(z[concept], full_matrices=False)
    assert abs(vt[0] @ result.loadings[0, 0]) == pytest.approx(1.0, abs=1e-9)
    np.testing.assert_allclose(result.eigenvalues[0], singular[:3] ** 2 / concept.sum(), rtol=1e-8)
    within = concept_pca(model, "0", two_concept_probe, ["bar"], center="concept", progress=False)
    _, _, vt = np.linalg.svd(z[concept] - z[concept].mean(0), full_matrices=False)
    assert abs(vt[0] @ within.loadings[0, 0]) == pytest.approx(1.0, abs=1e-9)


def test_pca_pixel_sampling_and_errors(two_concept_probe):
    sampled = concept_pca(channel_model(), "0", two_concept_probe, ["square"], pixels_per_image=7, seed=0,
                          progress=False)
    assert sampled.n_pixels.tolist() == [16 * 7]
    assert sampled.summary().top_unit[0] == 2
    with pytest.raises(ValueError, match="did you mean 'square'"):
        concept_pca(channel_model(), "0", two_concept_probe, ["squares"], progress=False)


def test_experiment_figures(palette_probe, two_concept_probe):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkviz.plotting.dissection_figures import plot_axis_alignment, plot_concept_loadings, plot_robustness

    model = PaletteDetectors()
    robustness = detector_robustness(model, "units", palette_probe, (Rotate(90), AddNoise(1.0, seed=0)),
                                     quantile=QUANTILE, progress=False)
    figure = plot_robustness(robustness.summary())
    assert [line.get_label() for line in figure.axes[0].lines] == ["rotation", "noise"]
    rotations = axis_alignment(model, "units", palette_probe, alphas=(1.0,), seeds=(0, 1), quantile=QUANTILE,
                               progress=False)
    figure = plot_axis_alignment(rotations.to_frame())
    assert len(figure.axes) == 1
    pca = concept_pca(channel_model(), "0", two_concept_probe, ["square"], progress=False)
    figure = plot_concept_loadings(pca.to_frame(), "square")
    assert len(figure.axes[0].patches) == 4
    with pytest.raises(ValueError, match="no loadings"):
        plot_concept_loadings(pca.to_frame(), "bar")
    plt.close("all")
