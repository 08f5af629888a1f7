"""Method agreement on hand-built tables whose agreement levels are known, with the toy world's vocabulary spelled
out here (the core imports no world)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from linkviz.quantify.method_agreement import (
    AGREEMENT_LEVELS,
    concept_vocabulary,
    method_agreement,
    strongest_changes,
)
from linkviz.quantify.population import LabelVectors

PARTS = ("background", "stem", "cap", "crown", "wall", "roof", "door", "petals", "centre", "body", "head")
OBJECTS = {"mushroom": ("stem", "cap"), "tree": ("stem", "crown"), "house": ("wall", "roof", "door")}
COLOURS = ("red", "blue", "green")


@pytest.fixture
def vocabulary():
    return concept_vocabulary(parts=PARTS, objects=OBJECTS, colours=COLOURS, textures=("striped",),
                              scene_concept="background", aliases={"sky": "background"})


def test_the_vocabulary_maps_each_kind_of_word_explicitly(vocabulary):
    assert vocabulary.concept("Cap ") == "cap" and vocabulary.concept("mushroom") == "mushroom"
    assert vocabulary.concept("red-c") == vocabulary.concept("red") == "red"
    assert vocabulary.concept("blue-s") == vocabulary.concept("sky") == "background"
    assert vocabulary.concept("striped") == "striped"
    for unmapped in ("umbrella", "none", None, np.nan, pd.NA):
        assert vocabulary.concept(unmapped) is None
    assert vocabulary.first_concept(["umbrella", "dome", "cap", "stem"]) == "cap"
    assert vocabulary.compatible("mushroom", "cap") and vocabulary.compatible("stem", "tree")
    assert not vocabulary.compatible("mushroom", "tree") and not vocabulary.compatible("cap", "crown")
    with pytest.raises(ValueError, match=r"objects name parts \['trunk'\]"):
        concept_vocabulary(parts=PARTS, objects={"tree": ("trunk",)})


def _dissection(rows):
    return pd.DataFrame(rows, columns=["unit", "label", "iou"])


def _lavise(words_by_unit):
    return pd.DataFrame([(unit, rank, word) for unit, words in words_by_unit.items()
                         for rank, word in enumerate(words)], columns=["unit", "rank", "word"])


def _tuning(rows):
    return pd.DataFrame(rows, columns=["unit", "label", "metric"])


def test_agreement_levels_and_flags_match_hand_built_cases(vocabulary):
    dissection = _dissection([(0, "cap", 0.2), (1, "mushroom", 0.1), (2, "cap", 0.3), (3, "red-c", 0.2),
                              (4, "cap", 0.02), (5, "none", 0.0), (6, "blue-s", 0.15), (7, "roof", 0.1),
                              (8, "mushroom", 0.1)])
    lavise = _lavise({0: ["umbrella", "cap"], 1: ["cap"], 2: ["crown"], 3: ["wall"], 4: ["cap"], 5: ["umbrella"],
                      6: ["sky", "blue"], 7: ["roof"], 8: ["stem"]})
    tuning = _tuning([(0, "cap", "area"), (1, "cap", "luminance"), (2, "cap", "area"), (3, "stem", "area"),
                      (4, "crown", "area"), (5, "cap", "area"), (6, "background", "luminance"),
                      (7, "door", "angle"), (8, "cap", "area")])
    result = method_agreement(vocabulary=vocabulary, dissection=dissection, lavise=lavise, tuning=tuning)
    frame = result.to_frame().set_index("unit")
    expected = {0: "all agree",        # cap, cap (after an unmapped word), cap
                1: "all agree",        # the mushroom covers its stem and its cap
                2: "two agree",        # LaViSE dissents: crown
                3: "all disagree",     # red, wall, stem
                4: "all disagree",     # IoU below 0.04 leaves LaViSE's cap against tuning's crown
                5: "not enough labels",  # no dissection label, LaViSE unmapped: tuning alone
                6: "all agree",        # scene colour, sky, background luminance
                7: "two agree",        # tuning dissents: door
                8: "two agree"}        # the mushroom has a stem and a cap, but LaViSE's stem is not tuning's cap
    assert frame["agreement"].to_dict() == expected
    assert frame["flagged"].to_dict() == {0: False, 1: False, 2: True, 3: True, 4: True, 5: False, 6: False,
                                          7: True, 8: True}
    assert frame.loc[2, "dissenter"] == "lavise" and frame.loc[7, "dissenter"] == "tuning"
    assert pd.isna(frame.loc[3, "dissenter"]) and pd.isna(frame.loc[8, "dissenter"])
    assert pd.isna(frame.loc[4, "dissection_concept"]) and pd.isna(frame.loc[5, "lavise_concept"])
    assert frame["n_labels"].to_dict() == {0: 3, 1: 3, 2: 3, 3: 3, 4: 2, 5: 1, 6: 3, 7: 3, 8: 3}
    assert frame.loc[0, "lavise_words"] == ("umbrella", "cap") and frame.loc[0, "tuning_metric"] == "area"
    assert result.flagged()["unit"].tolist() == [3, 4, 2, 7, 8]  # all disagree first
    assert result.counts().to_dict() == {"all agree": 3, "two agree": 3, "all disagree": 2,
                                         "not enough labels": 1}
    assert result.levels([2, 99]).tolist() == ["two agree", "not enough labels"]


def test_missing_methods_units_and_nan_are_missing_labels_not_disagreements(vocabulary):
    dissection = _dissection([(0, "cap", np.nan), (1, "cap", 0.2), (2, None, np.nan)])
    tuning = _tuning([(0, "cap", "area"), (1, "crown", "area"), (3, None, None)])
    result = method_agreement(vocabulary=vocabulary, dissection=dissection, tuning=tuning)  # no LaViSE
    frame = result.to_frame().set_index("unit")
    assert frame.index.tolist() == [0, 1, 2, 3]  # the union of the units
    assert frame["agreement"].to_dict() == {0: "not enough labels", 1: "all disagree", 2: "not enough labels",
                                            3: "not enough labels"}
    assert frame["lavise_words"].tolist() == [()] * 4 and frame["lavise_concept"].isna().all()
    two = method_agreement(vocabulary=vocabulary, lavise=_lavise({5: ["cap", "stem"]}),
                           tuning=_tuning([(5, "cap", "area")]))
    assert two.to_frame()["agreement"].tolist() == ["two agree"] and not two.to_frame()["flagged"].any()
    empty = method_agreement(vocabulary=vocabulary)
    assert len(empty.to_frame()) == 0 and empty.counts().sum() == 0


def test_only_the_first_n_words_of_lavise_count(vocabulary):
    lavise = _lavise({0: ["umbrella", "dome", "cap"]})
    tuning = _tuning([(0, "cap", "area")])
    assert method_agreement(vocabulary=vocabulary, lavise=lavise, tuning=tuning, n_words=2).to_frame()[
        "agreement"].tolist() == ["not enough labels"]
    assert method_agreement(vocabulary=vocabulary, lavise=lavise, tuning=tuning, n_words=3).to_frame()[
        "agreement"].tolist() == ["two agree"]
    with pytest.raises(ValueError, match="n_words must be at least 1; got 0"):
        method_agreement(vocabulary=vocabulary, lavise=lavise, n_words=0)


def test_bad_tables_and_an_extra_column(vocabulary):
    with pytest.raises(ValueError, match=r"dissection needs columns unit, label, iou.*missing \['iou'\]"):
        method_agreement(vocabulary=vocabulary, dissection=pd.DataFrame({"unit": [0], "label": ["cap"]}))
    with pytest.raises(ValueError, match="extra needs a 'unit' column"):
        method_agreement(vocabulary=vocabulary, extra=pd.DataFrame({"score": [1.0]}))
    extra = pd.DataFrame({"unit": [1], "causal_score": [0.9]})
    frame = method_agreement(vocabulary=vocabulary, tuning=_tuning([(0, "cap", "area"), (1, "stem", "area")]),
                             extra=extra).to_frame()
    assert frame["causal_score"].iloc[1] == 0.9 and np.isnan(frame["causal_score"].iloc[0])


def test_strongest_changes_name_the_label_and_metric_each_unit_changes_most():
    values = np.zeros((3, 2, 2))  # units x (stem, cap) x (area, luminance)
    values[0, 1, 0] = 0.8          # cap area
    values[1, 0, 1] = -0.5         # stem luminance (darker)
    vectors = LabelVectors(units=np.array([10, 11, 12]), labels=("stem", "cap"), metrics=("area", "luminance"),
                           values=values)
    frame = strongest_changes(vectors)
    assert frame["label"].tolist()[:2] == ["cap", "stem"] and frame["metric"].tolist()[:2] == ["area", "luminance"]
    np.testing.assert_allclose(frame["change"].to_numpy()[:2], [0.8, -0.5])
    assert pd.isna(frame["label"].iloc[2]) and np.isnan(frame["change"].iloc[2])  # unit 12 changes nothing
    assert AGREEMENT_LEVELS[0] == "all agree"


def test_causal_scores_of_the_dissection_label_and_the_lavise_word_become_columns(vocabulary):
    dissection = _dissection([(0, "cap", 0.2), (1, "roof", 0.1), (2, "none", 0.0)])
    lavise = _lavise({0: ["umbrella", "stem"], 1: ["roof"]})
    scores = pd.DataFrame({"unit": [0, 0, 1, 1], "label": ["cap", "stem", "roof", "door"],  # as causal_scores gives
                           "score": [0.3, -0.1, 0.02, 0.5], "ci_low": [0.2, -0.2, -0.01, 0.4],
                           "ci_high": [0.4, 0.0, 0.05, 0.6], "segmented": True})
    frame = method_agreement(vocabulary=vocabulary, dissection=dissection, lavise=lavise,
                             causal_scores=scores).to_frame().set_index("unit")
    np.testing.assert_array_equal(frame["dissection_causal_score"], [0.3, 0.02, np.nan])
    np.testing.assert_array_equal(frame["dissection_causal_ci_low"], [0.2, -0.01, np.nan])
    np.testing.assert_array_equal(frame["lavise_causal_score"], [-0.1, 0.02, np.nan])  # first mapped word
    with pytest.raises(ValueError, match=r"causal_scores needs columns .*missing \['ci_high', 'ci_low'\]"):
        method_agreement(vocabulary=vocabulary, dissection=dissection, causal_scores=scores[["unit", "label",
                                                                                             "score"]])


def test_the_detector_threshold_is_dissections():
    from linkviz.dissection.dissect import DETECTOR_IOU as dissection_threshold
    from linkviz.quantify.method_agreement import DETECTOR_IOU

    assert DETECTOR_IOU == dissection_threshold
