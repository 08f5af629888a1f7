"""UnitDescribing without ipywidgets: the colour world dissected, hand-made LaViSE words, the fake linked world."""

from __future__ import annotations

import fake_dissection
import numpy as np
import pandas as pd
import pytest
from matplotlib.figure import Figure
from torch import nn

from linkviz.controllers import UnitCardView, UnitDescribing, unit_frame
from linkviz.controllers.unit_tuning import TuningView, UnitTuning
from linkviz.dissection import dissect
from linkviz.dissection.report import unit_images
from linkviz.lavise import LaviseExplanation
from linkviz.tuning import effect_sizes

explanation = fake_dissection.word_explanation  # fixture shared with the widget tests


def test_unit_frame_joins_the_three_methods(colour_world, linked, explanation):
    result, _ = colour_world
    frame = unit_frame(result, linked, explanation)
    assert frame.label.tolist() == ["red-c", "green-c", "blue-c"] and frame.words.tolist() == ["red, sky", "green", ""]
    effect = effect_sizes(linked.link, linked.stats)
    np.testing.assert_allclose(frame.effect, effect)
    assert frame.effect_rank.tolist() == (np.argsort(np.argsort(-effect, kind="stable")) + 1).tolist()
    with pytest.raises(ValueError, match="has 2 units but the link's r has 3"):
        unit_frame(dissect(nn.Conv2d(3, 2, 1), "", colour_world[1], progress=False, quantile=0.1), linked)


def test_card_of_a_unit_with_table_and_figure(colour_world, linked, explanation, axis_labels):
    result, probe = colour_world
    describing = UnitDescribing(result, probe, linked, explanation=explanation, k=2)
    assert isinstance(describing.tuning, UnitTuning)  # the Linking-in-Style numbers come from the tuning state
    view = describing.compute(0)
    assert isinstance(view, UnitCardView) and view.unit == 0 and view.label == "red-c" and view.explained
    assert view.words.word.tolist() == ["red", "sky"] and view.words.votes.tolist() == [2.0, 1.0]
    effect = effect_sizes(linked.link, linked.stats)
    assert view.effect == pytest.approx(effect[0]) and view.effect_rank == describing.tuning.rank[0]
    assert set(view.images) <= {0, 3, 6}  # ground truth: the red images
    np.testing.assert_array_equal(view.images, unit_images(result, probe, 0, k=2).indices)
    zoom = 80 // 8
    assert view.grid.shape == (8 * zoom, (2 * 9 - 1) * zoom, 3)
    assert "<b>red</b> (2)" in view.lavise_html and f"effect size <b>{effect[0]:.3g}</b>" in view.linking_html
    assert "Network Dissection" in view.caption and "Linking in Style" in view.caption

    frame = view.to_frame()
    assert len(frame) == 2 and frame.columns.tolist() == [
        "unit", "label", "category", "iou", "is_detector", "words", "effect", "effect_rank", "causal_score",
        "causal_ci_low", "causal_ci_high", "rank", "image", "maximum"]
    assert set(frame.words) == {"red, sky"} and frame.image.tolist() == view.images.tolist()
    np.testing.assert_allclose(frame.maximum, result.image_max[view.images, 0])
    figure = view.figure()
    assert isinstance(figure, Figure) and figure.get_suptitle() == "unit 0: red"
    assert axis_labels(figure) == (["unit 0"], [f"image {i}" for i in view.images])

    blue = describing.compute(2)
    assert blue.label == "blue-c" and blue.explained is False and "not explained" in blue.lavise_html
    assert blue.to_frame().words.tolist() == ["", ""]
    with pytest.raises(IndexError):
        describing.compute(3)


def test_strongest_units_and_the_shared_tuning(colour_world, linked):
    result, probe = colour_world
    describing = UnitDescribing(result, probe, linked)
    effect = effect_sizes(linked.link, linked.stats)
    assert describing.strongest_unit == int(np.argmax(effect))
    options = describing.strongest_options(2)
    assert [unit for _, unit in options] == np.argsort(-effect, kind="stable")[:2].tolist()
    assert options[0][0].startswith(f"unit {options[0][1]}: ")
    view = describing.compute(1)
    assert view.explained is None and "no explanation given" in view.lavise_html
    tuned = describing.tuning.compute(1, float(linked.stats.max[1]), (0, 1))
    assert isinstance(tuned, TuningView) and tuned.unit == 1


def test_bad_input(colour_world, linked, explanation, colour_model):
    result, probe = colour_world
    other = LaviseExplanation(**{**explanation.__dict__, "layer": "1"})
    with pytest.raises(ValueError, match="explanation is of layer '1'"):
        UnitDescribing(result, probe, linked, explanation=other)
    with pytest.raises(ValueError, match="positive"):
        UnitDescribing(result, probe, linked, k=0)
    bare = dissect(colour_model, "2", probe, quantile=0.1, progress=False, top_k=0)
    with pytest.raises(ValueError, match="no top images"):
        UnitDescribing(bare, probe, linked)


def test_the_card_shows_the_causal_score_of_its_label_with_its_interval(colour_world, linked):
    result, probe = colour_world
    scores = pd.DataFrame({"unit": [0, 0, 1], "label": ["red-c", "sky", "blue-c"], "score": [0.25, -0.01, 0.3],
                           "ci_low": [0.2, -0.05, 0.1], "ci_high": [0.3, 0.03, 0.5]})
    describing = UnitDescribing(result, probe, linked, causal_scores=scores, k=2)
    view = describing.compute(0)
    assert (view.causal_score, view.causal_ci_low, view.causal_ci_high) == (0.25, 0.2, 0.3)
    assert "causal score of <b>red</b>: <b>+0.25 [+0.2, +0.3]</b>" in view.linking_html
    assert "causal score of <b>sky</b>: -0.01 [-0.05, +0.03]" in view.linking_html
    assert view.to_frame().causal_score.tolist() == [0.25, 0.25]
    green = describing.compute(1)  # unit 1 is green; a score of another label is not its label's score
    assert np.isnan(green.causal_score) and "causal score of <b>green</b>: <b>not scored</b>" in green.linking_html
    assert "causal" not in UnitDescribing(result, probe, linked, k=2).compute(0).linking_html
