"""Causal scores of unit labels: exact on the fake world (identity link), and right vs shuffled labels on the toy."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from fake_concepts import ChannelSegmenter

from linkviz.labels import (
    SCORE_COLUMNS,
    ConceptSegmenter,
    causal_scores,
    score_presence,
    shuffled_labels,
    unit_presence,
)


def test_the_channel_segmenter_is_a_concept_segmenter():
    assert isinstance(ChannelSegmenter(), ConceptSegmenter)


def test_each_unit_grows_its_own_channel_and_no_other(identity_linked):
    # identity link: unit c is w_c, the brightness of channel c; from its min to its max the channel crosses the level
    linked = identity_linked
    level = 191
    brightness = (np.tanh(np.stack([linked.stats.min, linked.stats.max]) / 4) + 1) * 127.5  # [2, 3]
    assert (brightness[0] < level).all() and (brightness[1] > level).all()
    units = [0, 1, 2, 0, 1, 2]
    labels = ["red", "green", "blue", "green", "blue", "red"]
    scores = causal_scores(linked, units, labels, segmenter=ChannelSegmenter(level), seeds=[0, 1, 2, 3],
                           direction="unit")
    assert scores.columns.tolist() == SCORE_COLUMNS and scores.n_seeds.tolist() == [4] * 6
    np.testing.assert_allclose(scores.score, [1, 1, 1, 0, 0, 0], atol=1e-6)  # every seed: absent -> everywhere
    np.testing.assert_allclose(scores.ci_low, scores.score, atol=1e-6)  # equal changes: an interval of width 0
    np.testing.assert_allclose(scores.presence_low[:3], 0.0) and np.testing.assert_allclose(scores.presence_high[:3], 1)


def test_the_interval_is_the_student_t_interval_over_seeds(identity_linked):
    # a level inside some seeds' ranges only: seeds differ, so the interval has width, centred on the mean change
    segmenter = ChannelSegmenter(191)
    measured = unit_presence(identity_linked, [0], segmenter=segmenter, seeds=[0, 1, 2])
    changes = np.array([0.2, 0.5, 1.0])
    measured.presence[0, :, 0, 0], measured.presence[0, :, 1, 0] = 0.0, changes
    row = score_presence(measured, [0], ["red"], confidence=0.9).iloc[0]
    half = 2.919986 * changes.std(ddof=1) / np.sqrt(3)  # t(0.95, 2 dof)
    assert row.score == pytest.approx(changes.mean())
    assert (row.ci_low, row.ci_high) == pytest.approx((changes.mean() - half, changes.mean() + half), rel=1e-5)


def test_an_unknown_label_scores_nan_and_bad_input_is_refused(identity_linked):
    segmenter = ChannelSegmenter()
    scores = causal_scores(identity_linked, [1], ["sky"], segmenter=segmenter, seeds=[0, 1], direction="unit")
    assert np.isnan(scores.score[0]) and not scores.segmented[0]
    with pytest.raises(ValueError, match="at least 2 seeds"):
        causal_scores(identity_linked, [1], ["red"], segmenter=segmenter, seeds=[0], direction="unit")
    with pytest.raises(ValueError, match="parallel"):
        causal_scores(identity_linked, [1, 2], ["red"], segmenter=segmenter, seeds=[0, 1], direction="unit")
    with pytest.raises(IndexError):
        causal_scores(identity_linked, [7], ["red"], segmenter=segmenter, seeds=[0, 1], direction="unit")


def test_scores_are_cached_by_everything_that_decides_them(identity_linked, tmp_path):
    segmenter = ChannelSegmenter(191)
    first = causal_scores(identity_linked, [0, 1], ["red", "green"], segmenter=segmenter, seeds=[0, 1],
                          direction="unit", cache_dir=tmp_path, units_per_chunk=1)
    calls = segmenter.calls
    again = causal_scores(identity_linked, [0, 1], ["red", "green"], segmenter=segmenter, seeds=[0, 1],
                          direction="unit", cache_dir=tmp_path, units_per_chunk=1)
    assert segmenter.calls == calls  # read back, not recomputed
    assert again.equals(first)
    other = ChannelSegmenter(250)  # another segmenter identity: another entry, other numbers
    moved = causal_scores(identity_linked, [0, 1], ["red", "green"], segmenter=other, seeds=[0, 1], direction="unit",
                          cache_dir=tmp_path, units_per_chunk=1)
    assert other.calls > 0 and len(list((tmp_path / "causal_presence").iterdir())) == 2
    assert not np.allclose(moved.score, first.score)


def test_shuffled_labels_never_keep_a_units_own_label():
    labels = ["roof"] * 5 + ["cap"] * 3 + ["sky"] * 2
    for seed in range(5):
        shuffled = shuffled_labels(labels, seed=seed)
        assert sorted(shuffled) == sorted(labels)
        assert all(a != b for a, b in zip(labels, shuffled))
    assert shuffled_labels(labels, seed=1) == shuffled_labels(labels, seed=1)
    with pytest.raises(ValueError, match="'roof' is held by 6 of 10"):
        shuffled_labels(["roof"] * 6 + ["cap"] * 4, seed=0)


class ToyColourSegmenter:
    """The toy probe's colour (``-c``, per pixel) and scene (``-s``, the colour of most border pixels) concepts."""

    def __init__(self) -> None:
        from linkviz.worlds.toy.concepts import COLOUR_NAMES, colour_name_mask

        self.names, self.name_mask = COLOUR_NAMES, colour_name_mask
        self.labels = tuple(f"{c}-c" for c in COLOUR_NAMES) + tuple(f"{c}-s" for c in COLOUR_NAMES)
        self.identity = "toy-colours-v1"

    def __call__(self, images: np.ndarray, w: torch.Tensor) -> np.ndarray:
        colours = self.name_mask(images)  # [N, H, W]
        border = np.concatenate([colours[:, 0], colours[:, -1], colours[:, :, 0], colours[:, :, -1]], axis=1)
        scene = np.array([np.bincount(row, minlength=len(self.names)).argmax() for row in border])
        pixels = [colours == k for k in range(len(self.names))]
        scenes = [np.broadcast_to((scene == k)[:, None, None], colours.shape) for k in range(len(self.names))]
        return np.stack(pixels + scenes, axis=1)


@pytest.fixture(scope="module")
def toy_linked(tmp_path_factory):
    import linkviz
    from linkviz.linking import build_linked_model

    torch.set_num_threads(1)  # module fixtures are built before the function-scoped single_thread
    world = linkviz.load_toy_world(device="cpu")
    return build_linked_model(world, samples_per_class=40, seed=0, cache_dir=tmp_path_factory.mktemp("pairs"))


def test_toy_right_labels_score_above_shuffled_ones(toy_linked):
    """Ground truth from held-out seeds: a unit's right label is the concept it moves most on 6 seeds; on 6 other
    seeds that label must score above the label of another unit (ROC AUC >= 0.9 over 16 strong units)."""
    from sklearn.metrics import roc_auc_score

    from linkviz.tuning import effect_sizes

    segmenter = ToyColourSegmenter()
    units = np.argsort(-effect_sizes(toy_linked.link, toy_linked.stats))[:16].tolist()
    seeds = toy_linked.example_seeds(12)
    truth = unit_presence(toy_linked, units, segmenter=segmenter, seeds=seeds[::2], direction="unit")
    change = (truth.presence[:, :, 1] - truth.presence[:, :, 0]).mean(axis=1)  # [U, L]
    right = [segmenter.labels[i] for i in change.argmax(axis=1)]
    held_out = unit_presence(toy_linked, units, segmenter=segmenter, seeds=seeds[1::2], direction="unit")
    scores_right = score_presence(held_out, units, right).score
    scores_shuffled = score_presence(held_out, units, shuffled_labels(right, seed=0)).score
    auc = roc_auc_score(np.r_[np.ones(len(units)), np.zeros(len(units))], np.r_[scores_right, scores_shuffled])
    assert auc >= 0.9, (auc, right)
