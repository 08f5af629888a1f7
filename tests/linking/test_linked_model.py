"""LinkedModel's choice of base examples: round-robin over classes, not the first rows (which share a class)."""

from __future__ import annotations

import numpy as np
import pytest

from linkviz.linking import LinearLink, LinkedModel, balanced_seeds
from linkviz.pairs import PairSet
from linkviz.tuning import UnitStats


def _sorted_linked(counts: tuple[int, ...] = (5, 3, 0, 2)) -> LinkedModel:
    """Pairs sorted by class, as build_linked_model returns them: ``counts[c]`` examples of class c."""
    predicted = np.repeat(np.arange(len(counts)), counts)
    n = len(predicted)
    r = np.random.default_rng(0).normal(size=(n, 2)).astype(np.float32)
    pairs = PairSet(w=r.copy(), r=r, labels=predicted.copy(), predicted=predicted, accepted=np.ones(n, bool),
                    seeds=np.arange(n))
    link = LinearLink(weight=np.eye(2, dtype=np.float32), bias=np.zeros(2, np.float32))
    generator = type("Generator", (), {"w_dim": 2, "num_ws": 1})()
    return LinkedModel(classifier=None, generator=generator, link=link, stats=UnitStats.from_activations(r),
                       pairs=pairs, class_names=("mushroom", "tree", "house", "snowman"))


def test_balanced_seeds_take_classes_round_robin():
    labels = np.array([0, 0, 0, 0, 0, 1, 1, 1, 3, 3])
    assert balanced_seeds(labels, 4) == (0, 5, 8, 1)  # one of each class, then the second of the first
    assert balanced_seeds(labels, 100) == (0, 5, 8, 1, 6, 9, 2, 7, 3, 4)  # all, classes that ran out skipped
    assert balanced_seeds(labels, 3, classes=(3, 1)) == (8, 5, 9)  # the classes' order is kept
    assert balanced_seeds(labels, 2, classes=(2, 1)) == (5, 6)  # class 2 has no example: skipped
    with pytest.raises(ValueError, match="no example"):
        balanced_seeds(labels, 2, classes=(2,))
    with pytest.raises(ValueError, match="at least 1"):
        balanced_seeds(labels, 0)
    with pytest.raises(ValueError, match="distinct"):
        balanced_seeds(labels, 2, classes=(1, 1))


def test_example_seeds_of_class_sorted_pairs_span_the_classes():
    linked = _sorted_linked()
    assert set(linked.pairs.predicted[:4]) == {0}  # the first rows are all one class
    seeds = linked.example_seeds(4)
    assert seeds == (0, 5, 8, 1) and set(linked.pairs.predicted[list(seeds)]) == {0, 1, 3}
    assert linked.example_seeds(2, classes=["snowman"]) == (8, 9)  # by name
    assert linked.example_seeds(3, classes=[1, "snowman"]) == (5, 8, 6)
    with pytest.raises(ValueError, match="unknown class 'cat'"):
        linked.example_seeds(2, classes=["cat"])
    with pytest.raises(IndexError, match="class 7 out of range"):
        linked.example_seeds(2, classes=[7])
