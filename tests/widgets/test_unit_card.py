"""UnitCard driven through its traits: a three-unit colour model dissected, hand-made LaViSE words, the fake
linked world (whose r also has three units)."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from torch import nn

from linkviz.controllers.unit_describing import unit_frame
from linkviz.dissection import ProbeDataset, dissect
from linkviz.lavise import LaviseExplanation
from linkviz.tuning import effect_sizes
from linkviz.widgets import UnitCard


def colour_model() -> nn.Sequential:
    """Units 0, 1, 2 read the red, green and blue channels (1x1 identity conv, ReLU, 2x2 average pool)."""
    conv = nn.Conv2d(3, 3, 1)
    with torch.no_grad():
        conv.weight.copy_(torch.eye(3)[:, :, None, None])
        conv.bias.zero_()
    return nn.Sequential(conv, nn.ReLU(), nn.AvgPool2d(2))


def colour_probe() -> ProbeDataset:
    """Nine 8x8 images, each with a bright 4x4 square of one primary colour, labelled with that colour."""
    images = np.full((9, 8, 8, 3), 10, np.uint8)
    labels = np.zeros((9, 1, 8, 8), np.int64)
    for i in range(9):
        top = 2 * (i // 3)
        images[i, top:top + 4, top:top + 4, i % 3] = 250
        labels[i, 0, top:top + 4, top:top + 4] = i % 3 + 1
    return ProbeDataset(images=images, label_names=("-", "red-c", "green-c", "blue-c"), categories=("color",),
                        pixel_labels={"color": labels})


@pytest.fixture(scope="module")
def dissected():
    torch.set_num_threads(1)
    probe = colour_probe()
    return dissect(colour_model(), "2", probe, quantile=0.1, progress=False, top_k=3), probe


@pytest.fixture
def explanation() -> LaviseExplanation:
    """Units 0 and 1 explained with the words red, sky and green."""
    ids = np.zeros((2, 1, 2), np.int64)
    return LaviseExplanation(
        layer="2", units=np.array([0, 1]), attention="code", s=2, top_images=np.array([[0], [1]]),
        image_activation=np.ones((2, 1), np.float32), valid=np.ones((2, 1), bool), image_word_ids=ids,
        image_similarity=np.ones((2, 1, 2), np.float32), unit_word_ids=(np.array([0, 2]), np.array([1])),
        unit_votes=(np.array([2.0, 1.0]), np.array([1.5])), vocabulary=("red", "green", "sky"))


def test_the_three_methods_agree_on_the_table(dissected, linked, explanation):
    result, _ = dissected
    frame = unit_frame(result, linked, explanation)
    assert frame.label.tolist() == ["red-c", "green-c", "blue-c"]
    assert frame.words.tolist() == ["red, sky", "green", ""]
    effect = effect_sizes(linked.link, linked.stats)
    assert np.allclose(frame.effect, effect) and frame.effect_rank[int(np.argmax(effect))] == 1


def test_card_shows_label_words_and_effect_and_follows_the_unit(dissected, linked, explanation):
    result, probe = dissected
    card = UnitCard(result, probe, linked, explanation=explanation, unit=0, k=2, seeds=(0, 1))
    assert "<b>red</b>" in card.dissection_html.value and "IoU" in card.dissection_html.value
    assert "<b>red</b> (2)" in card.lavise_html.value and "<b>sky</b> (1)" in card.lavise_html.value
    effect = effect_sizes(linked.link, linked.stats)
    assert f"effect size <b>{effect[0]:.3g}</b>" in card.linking_html.value
    assert card.tuner.unit.value == 0
    first = card.image.value
    card.unit.value = 2
    assert card.shown_unit == 2 and card.image.value != first
    assert "<b>blue</b>" in card.dissection_html.value and "not explained" in card.lavise_html.value
    assert card.tuner.unit.value == 2  # the embedded tuner follows
    assert card.tuner.worker.wait_idle(10) and card.tuner.shown.unit == 2
    card.tuner.unit.value = 1  # and the card follows the tuner
    assert card.unit.value == 1 and "<b>green</b>" in card.lavise_html.value
    assert card.tuner.worker.wait_idle(10)


def test_strongest_dropdown_default_unit_and_snapshot(dissected, linked):
    result, probe = dissected
    card = UnitCard(result, probe, linked, tuner=False)
    strongest = int(np.argmax(effect_sizes(linked.link, linked.stats)))
    assert card.unit.value == strongest and card.strongest.value == strongest and card.tuner is None
    other = next(value for _, value in card.strongest.options if value != strongest)
    card.strongest.value = other
    assert card.unit.value == other and "no explanation given" in card.lavise_html.value
    bundle = card._repr_mimebundle_()
    assert bundle["text/html"].startswith('<img src="data:image/png;base64,')
    assert "Linking in Style" in bundle["text/html"]
    with_tuner = UnitCard(result, probe, linked, seeds=(0,))._repr_mimebundle_()["text/html"]
    assert with_tuner.count("<img") == 2


def test_mismatched_units_or_layers(dissected, linked, explanation):
    result, probe = dissected
    with pytest.raises(ValueError, match="has 2 units but the link's r has 3"):
        unit_frame(dissect(nn.Conv2d(3, 2, 1), "", probe, progress=False, quantile=0.1), linked)
    other = LaviseExplanation(**{**explanation.__dict__, "layer": "1"})
    with pytest.raises(ValueError, match="explanation is of layer '1'"):
        UnitCard(result, probe, linked, explanation=other, tuner=False)
    with pytest.raises(IndexError):
        UnitCard(result, probe, linked, unit=3, tuner=False)
