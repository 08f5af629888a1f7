"""Explaining units and recall@s: hand-computed votes and recall, and the planted colour world end to end."""

from __future__ import annotations

import copy

import numpy as np
import pytest
import torch
from planted_colours import COLOURS, make_planted_model, make_planted_probe, make_planted_space

from linkviz import hash_state
from linkviz.dissection import dissect
from linkviz.lavise import (
    ExplainerHead,
    LaviseExplanation,
    evaluate_recall,
    explain_units,
    ground_truth,
    load_explainer,
    recall_at_s,
    split_concepts,
    top_images,
    train_explainer,
    unseen_concept_test,
)
from linkviz.lavise.explain import _vote

TRAINING = {"epochs": 50, "batch_size": 16, "learning_rate": 1e-2, "progress": False}


@pytest.fixture(scope="module")
def world():
    model, probe, space = make_planted_model(), make_planted_probe(), make_planted_space()
    dissection = dissect(model, "2", probe, progress=False)
    explainer = train_explainer(model, "2", probe, space, seed=0, **TRAINING)
    return model, probe, space, dissection, explainer


def test_top_images_are_stable():
    image_max = np.array([[1.0, 2.0], [3.0, 2.0], [3.0, 0.0]])
    assert top_images(image_max, np.array([0, 1]), 2).tolist() == [[1, 2], [0, 1]]
    assert top_images(image_max, np.array([1]), 5).tolist() == [[0, 1, 2]]


def test_vote_weights_words_by_activation():
    word_ids = np.array([[5, 7], [7, 9]])
    weights = np.array([2.0, 1.0])  # votes: 5 -> 2, 7 -> 3, 9 -> 1
    words, votes = _vote(word_ids, weights, n_words=10, allowed=None)
    assert words.tolist() == [7, 5, 9] and votes.tolist() == [3.0, 2.0, 1.0]
    allowed = np.ones(10, bool)
    allowed[5] = False
    assert _vote(word_ids, weights, n_words=10, allowed=allowed)[0].tolist() == [7, 9]
    assert _vote(word_ids, np.ones(2), n_words=1, allowed=None)[0].tolist() == [7]  # counts; tie -> first seen
    assert _vote(word_ids[:0], weights[:0], n_words=3, allowed=None)[0].size == 0
    assert _vote(word_ids, np.array([0.0, 1.0]), n_words=3, allowed=None)[0].tolist() == [7, 9]  # 5 got no vote


def hand_explanation(vocabulary):
    ids = np.zeros((2, 2, 3), np.int64)
    ids[0, 0] = [0, 6, 1]  # red, distractor0, green
    ids[0, 1] = [2, 0, 1]  # blue, red, green
    return LaviseExplanation(
        layer="2", units=np.array([0, 1]), attention="code", s=2, top_images=np.array([[0, 1], [1, 0]]),
        image_activation=np.ones((2, 2), np.float32), valid=np.array([[True, True], [True, False]]),
        image_word_ids=ids, image_similarity=np.zeros((2, 2, 3), np.float32),
        unit_word_ids=(np.array([0]), np.array([1])), unit_votes=(np.ones(1), np.ones(1)), vocabulary=vocabulary)


def test_recall_by_hand(planted_space):
    explanation = hand_explanation(planted_space.words)
    names = ("-", "red-c", "green-c", "blue-c", "red-s")
    # unit 0: image 0 detects red (twice, as colour and scene: one entry) and green; image 1 detects blue.
    # unit 1: its only active image detects nothing, so it is not evaluated.
    truth = [[(1, 2, 4), (3,)], [(), ()]]
    result = recall_at_s(explanation, truth, names, planted_space, s=(1, 2, 3))
    # image 0: @1 {red} -> 1/2, @2 -> 1/2, @3 {red, green} -> 1; image 1: blue first -> 1 at every s
    np.testing.assert_allclose(result.per_unit[0], [0.75, 0.75, 1.0])
    assert np.isnan(result.per_unit[1]).all() and result.n_images.tolist() == [2, 0]
    assert result.recall == {1: 0.75, 2: 0.75, 3: 1.0}
    assert sorted(result.hits.concept) == ["blue", "green", "red"]
    assert result.hits.set_index("concept").loc["green", ["hit@1", "hit@3"]].tolist() == [False, True]
    frame = result.to_frame()
    assert len(frame) == 6 and frame.columns.tolist() == ["unit", "s", "recall", "n_images"]
    with pytest.raises(ValueError, match="words stored per image"):
        recall_at_s(explanation, truth, names, planted_space, s=(5,))


def test_ground_truth_follows_the_planted_channels(world):
    model, probe, space, dissection, explainer = world
    explanation = explain_units(model, explainer, probe, space, p=10, image_max=dissection.image_max,
                                progress=False)
    truth = ground_truth(model, explanation, probe, dissection.thresholds, progress=False)
    names = probe.label_names
    red_unit = {names[label] for labels in truth[0] for label in labels}
    assert "red-c" in red_unit and not red_unit & {"green-c", "blue-c", "cyan-c"}  # no red in those
    blue_unit = {names[label] for labels in truth[2] for label in labels}
    assert "blue-c" in blue_unit and not blue_unit & {"red-c", "green-c", "yellow-c"}


@pytest.mark.parametrize("attention", ["code", "paper"])
def test_planted_world_end_to_end(world, attention):
    model, probe, space, dissection, explainer = world
    explanation = explain_units(model, explainer, probe, space, p=8, s=2, words_per_image=5,
                                attention=attention, progress=False)  # image_max computed here
    np.testing.assert_array_equal(explanation.top_images, top_images(dissection.image_max, np.arange(3), 8))
    assert [explanation.words(u)[0] for u in range(3)] == ["red", "green", "blue"]
    result = evaluate_recall(model, explanation, probe, dissection, space, s=(1, 5), progress=False)
    # chance: about 1 in 20 words at s = 1
    assert result.recall[1] >= 0.9 and result.recall[5] == 1.0 and result.n_images.min() >= 4
    frame = explanation.to_frame()
    assert frame.columns.tolist() == ["unit", "rank", "word", "votes"]
    assert frame[frame["rank"] == 0].word.tolist() == ["red", "green", "blue"]
    entities = explain_units(model, explainer, probe, space, p=8, s=2, entities=["green", "blue"],
                             image_max=dissection.image_max, progress=False)
    assert set(entities.to_frame().word) <= {"green", "blue"} and entities.words(1)[0] == "green"
    # the released code repeats a vote int(max activation) times: activations here stay below 1, so none count
    assert dissection.image_max.max() < 1
    truncated = explain_units(model, explainer, probe, space, p=8, vote="truncated", image_max=dissection.image_max,
                              progress=False)
    assert truncated.to_frame().empty and truncated.valid.all()


def test_an_explainer_refuses_another_classifier_and_its_saved_copy_remembers_which(world, tmp_path):
    model, probe, space, dissection, explainer = world
    assert explainer.classifier_hash == hash_state(model)
    assert load_explainer(explainer.save(tmp_path / "e.safetensors")).classifier_hash == explainer.classifier_hash
    other = copy.deepcopy(model)
    with torch.no_grad():
        next(other.parameters()).mul_(-1.0)  # another classifier of the same layout
    with pytest.raises(ValueError, match="trained on another classifier"):
        explain_units(other, explainer, probe, space, p=8, s=2, image_max=dissection.image_max, progress=False)
    # the bare head is the explicit way to use it anyway
    explain_units(other, explainer.head, probe, space, layer="2", p=8, s=2, progress=False)


def test_held_out_colour_is_recovered(world):
    # trained without "red", the explainer still names red squares "red": the colour words are linear in RGB
    model, probe, space, dissection, _ = world
    concepts = [f"{c}-c" for c in COLOURS if c != "red"]
    explainer = train_explainer(model, "2", probe, space, seed=0, concepts=concepts, **TRAINING)
    assert "red" not in explainer.label_words
    explanation = explain_units(model, explainer, probe, space, p=8, image_max=dissection.image_max,
                                progress=False)
    assert explanation.words(0)[0] == "red"
    result = evaluate_recall(model, explanation, probe, dissection, space, s=(1, 2), progress=False)
    red = result.hits[result.hits.concept == "red"]
    assert len(red) >= 4 and red["hit@1"].mean() >= 0.75


def test_unseen_concept_test_partitions_and_counts(world):
    model, probe, space, dissection, _ = world
    result = unseen_concept_test(model, probe, space, dissection, seed=0, train_fraction=0.5, s=2,
                                 train_options=TRAINING, progress=False)
    assert len(result.train_concepts) == 3 and len(result.held_out_concepts) == 3
    assert set(result.train_concepts) | set(result.held_out_concepts) == {f"{c}-c" for c in COLOURS}
    held_words = {name[:-2] for name in result.held_out_concepts}
    assert set(result.recovered) <= set(result.held_out_detected) <= held_words
    assert result.explainer.label_words == tuple(name[:-2] for name in result.train_concepts)
    recovered = result.recall.hits[result.recall.hits.concept.isin(held_words)]
    assert set(recovered.concept[recovered["hit@2"]]) == set(result.recovered)
    assert 0.0 <= result.fraction_recovered <= 1.0


def test_split_concepts_keeps_word_groups_together():
    names = ["red-c", "red-s", "blue-c", "sky", "dog", "cat"]
    train, held = split_concepts(names, train_fraction=0.4, seed=3)
    assert sorted(train + held) == sorted(names) and len({n.split("-")[0] for n in train}) == 2
    assert ("red-c" in train) == ("red-s" in train)
    assert (train, held) == split_concepts(names, train_fraction=0.4, seed=3)
    with pytest.raises(ValueError, match="train_fraction"):
        split_concepts(names, train_fraction=1.0, seed=0)
    with pytest.raises(ValueError, match="at least two different words"):
        split_concepts(["red-c", "red-s"], train_fraction=0.5, seed=0)


def test_explain_bad_input(world):
    model, probe, space, dissection, explainer = world
    with pytest.raises(ValueError, match=r"units must lie in \[0, 3\)"):
        explain_units(model, explainer, probe, space, units=[3], progress=False)
    with pytest.raises(ValueError, match="takes 4 channels, but layer '2' has 3"):
        explain_units(model, ExplainerHead(4, 8), probe, space, layer="2", progress=False)
    with pytest.raises(ValueError, match="predicts 5-d vectors"):
        explain_units(model, ExplainerHead(3, 5), probe, space, layer="2", progress=False)
    with pytest.raises(ValueError, match="pass layer="):
        explain_units(model, ExplainerHead(3, 8), probe, space, progress=False)
    with pytest.raises(ValueError, match="trained on layer '2'"):
        explain_units(model, explainer, probe, space, layer="1", progress=False)
    explanation = explain_units(model, explainer, probe, space, units=[0], p=3, words_per_image=5,
                                image_max=dissection.image_max, progress=False)
    other = dissect(model, "1", probe, progress=False)
    with pytest.raises(ValueError, match="dissection is of layer '1'"):
        evaluate_recall(model, explanation, probe, other, space, s=(5,), progress=False)
