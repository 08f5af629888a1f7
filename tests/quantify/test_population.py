"""Population analysis on synthetic label vectors with planted structure."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
from sklearn.metrics import adjusted_rand_score

from linkviz.quantify import (
    ChangeTable,
    LabelVectors,
    cluster_label_vectors,
    find_selective_units,
    hoyer_sparsity,
    label_sparsity,
    label_vectors,
    strongest_label,
    treves_rolls_sparsity,
    tsne_embedding,
)

LABELS = ("ear", "eye", "nose", "tail", "leg")
METRICS = ("area", "luminance", "entropy")


def _table(planted: np.ndarray, *, n_seeds: int = 8, noise: float = 0.05, seed: int = 0) -> ChangeTable:
    """Changes at steps 0, 1, 2 growing linearly to ``planted`` [U, L, M] at step 2, plus noise per seed."""
    rng = np.random.default_rng(seed)
    n_units = len(planted)
    unit, seed_id, step, label, metric = np.meshgrid(np.arange(n_units), np.arange(n_seeds), np.arange(3),
                                                     np.arange(len(LABELS)), np.arange(len(METRICS)), indexing="ij")
    change = planted[unit, label, metric] * step / 2 + noise * rng.normal(size=unit.shape) * (step > 0)
    return ChangeTable(pd.DataFrame({
        "unit": unit.ravel() + 100, "seed": seed_id.ravel(), "step": step.ravel(),
        "label": np.array(LABELS)[label.ravel()], "metric": np.array(METRICS)[metric.ravel()],
        "change": change.ravel()}))


def _planted_groups(per_group: int = 8, seed: int = 1) -> tuple[np.ndarray, np.ndarray]:
    """Three groups of units: ear area up, eye luminance down, nose+tail entropy up (a combination)."""
    rng = np.random.default_rng(seed)
    groups = np.repeat(np.arange(3), per_group)
    planted = 0.05 * rng.normal(size=(len(groups), len(LABELS), len(METRICS)))
    planted[groups == 0, 0, 0] += 1.0
    planted[groups == 1, 1, 1] -= 0.3
    planted[groups == 2, 2, 2] += 0.5
    planted[groups == 2, 3, 2] += 0.5
    return planted, groups


def test_hoyer_and_treves_rolls_end_points():
    one_hot, uniform = np.eye(5)[2], np.full(5, 0.7)
    for index in (hoyer_sparsity, treves_rolls_sparsity):
        assert index(one_hot) == pytest.approx(1.0)
        assert index(-3 * one_hot) == pytest.approx(1.0)
        assert index(uniform) == pytest.approx(0.0)
        assert 0 < index(np.array([1.0, 0.5, 0.0, 0.0, 0.0])) < 1
        assert np.isnan(index(np.zeros(5)))
        np.testing.assert_allclose(index(np.stack([one_hot, uniform]), axis=1), [1.0, 0.0], atol=1e-12)
        with pytest.raises(ValueError, match="at least 2"):
            index(np.ones(1))


def test_label_vectors_take_the_mean_over_seeds_at_the_last_step():
    planted, _ = _planted_groups()
    vectors = label_vectors(_table(planted, noise=0.0))
    assert vectors.values.shape == (24, 5, 3) and vectors.labels == LABELS and vectors.metrics == METRICS
    np.testing.assert_allclose(vectors.values, planted)
    np.testing.assert_allclose(label_vectors(_table(planted, noise=0.0), step=1).values, planted / 2)
    frame = vectors.to_frame()
    assert len(frame) == 24 * 5 * 3 and list(frame.columns) == ["unit", "label", "metric", "value"]


def test_label_sparsity_separates_single_label_units_from_mixed_ones():
    values = np.zeros((2, 5, 1))
    values[0, 3, 0] = 0.8
    values[1, :, 0] = 0.8
    vectors = LabelVectors(units=np.array([1, 2]), labels=LABELS, metrics=("area",), values=values)
    sparsity = label_sparsity(vectors).set_index("unit")["sparsity"]
    assert sparsity[1] == pytest.approx(1.0) and sparsity[2] == pytest.approx(0.0)
    assert (label_sparsity(vectors, index="treves_rolls")["index"] == "treves_rolls").all()


def test_clustering_recovers_planted_groups():
    planted, groups = _planted_groups()
    vectors = label_vectors(_table(planted))
    clustering = cluster_label_vectors(vectors, n_clusters=3)
    assert adjusted_rand_score(groups, clustering.clusters) == 1.0
    assert clustering.linkage.shape == (23, 4)
    assert list(clustering.to_frame().columns) == ["unit", "cluster"]


def test_strongest_label_names_the_planted_label():
    planted, groups = _planted_groups()
    names = strongest_label(label_vectors(_table(planted)))
    assert set(names[groups == 0]) == {"ear"} and set(names[groups == 1]) == {"eye"}
    assert set(names[groups == 2]) <= {"nose", "tail"}


def test_tsne_shape_and_determinism():
    planted, _ = _planted_groups(per_group=6)
    vectors = label_vectors(_table(planted))
    first = tsne_embedding(vectors, seed=3, max_iter=250)
    again = tsne_embedding(vectors, seed=3, max_iter=250)
    assert first.coordinates.shape == (18, 2)
    np.testing.assert_array_equal(first.coordinates, again.coordinates)
    assert list(first.to_frame().columns) == ["unit", "x", "y", "strongest_label"]


def test_find_selective_units_returns_planted_units_first():
    rng = np.random.default_rng(5)
    planted = 0.03 * rng.normal(size=(20, len(LABELS), len(METRICS)))
    planted[[4, 11, 17], 3, 0] = [0.6, 0.9, 0.4]  # tail area up, selectively
    planted[8, :, 0] = 1.5  # every label's area up: strong but not selective
    planted[2, 3, 0] = -0.8  # tail area down
    table = _table(planted)
    found = find_selective_units(table, label="tail", metric="area", sign="+", top=3, min_selectivity=0.5)
    assert list(found["unit"]) == [111, 104, 117]
    assert (found["ci_low"] > 0).all() and (found["ci_low"] < found["effect"]).all()
    assert (found["effect"] < found["ci_high"]).all() and list(found["rank"]) == [1, 2, 3]
    assert (found["selectivity"] > 0.5).all()
    unfiltered = find_selective_units(table, label="tail", metric="area", sign=1, top=1)
    assert list(unfiltered["unit"]) == [108]
    down = find_selective_units(table, label="tail", metric="area", sign="decrease", top=None)
    assert list(down["unit"])[:1] == [102] and down["effect"].iloc[0] == pytest.approx(0.8, abs=0.05)
    with pytest.raises(ValueError, match="label 'wing'"):
        find_selective_units(table, label="wing", metric="area", sign=1)


@pytest.mark.filterwarnings("ignore::PendingDeprecationWarning")  # seaborn's own use of cmap.set_bad
def test_plot_clustermap_draws_the_clustered_rows():
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    from linkviz.plotting import plot_clustermap

    planted, _ = _planted_groups(per_group=4)
    grid = plot_clustermap(label_vectors(_table(planted)), n_clusters=3, figsize=(4, 4))
    try:
        assert sorted(grid.dendrogram_row.reordered_ind) == list(range(12))
        assert grid.data.shape == (12, 15)
    finally:
        plt.close(grid.figure)
