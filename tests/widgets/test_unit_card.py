"""UnitCard driven through its traits: a three-unit colour model dissected, hand-made LaViSE words, the fake
linked world (whose r also has three units)."""

from __future__ import annotations

import fake_dissection
import numpy as np
import pytest
import torch
from torch import nn

from linkviz.controllers.unit_describing import unit_frame
from linkviz.dissection import dissect
from linkviz.lavise import LaviseExplanation
from linkviz.tuning import effect_sizes
from linkviz.widgets import UnitCard

explanation = fake_dissection.word_explanation  # fixture shared with the controller tests


@pytest.fixture(scope="module")
def dissected():
    """The colour world of :mod:`fake_dissection`: a three-unit colour model dissected on its probe."""
    torch.set_num_threads(1)
    return fake_dissection.colour_world()


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


def test_the_three_sections_share_the_width_and_wrap_instead_of_being_cut_off(dissected, linked, explanation):
    """Each section takes an equal share of the row and wraps its text; a narrow row wraps whole sections onto
    new lines, so the Linking-in-Style column is never pushed past the edge."""
    result, probe = dissected
    card = UnitCard(result, probe, linked, explanation=explanation, unit=0, tuner=False)
    sections = (card.dissection_html, card.lavise_html, card.linking_html)
    row = next(child for child in card.children if card.linking_html in getattr(child, "children", ()))
    assert row.layout.flex_flow == "row wrap" and row.layout.width == "100%"
    for section in sections:
        assert section.layout.flex == "1 1 0%" and section.layout.min_width == "16em"
