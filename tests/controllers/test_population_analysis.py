"""PopulationAnalysis without ipywidgets, on a change table with planted structure: unit k of each group of three
changes one thing (ear area up, eye luminance down, nose area up)."""

from __future__ import annotations

import copy

import numpy as np
import pandas as pd
import pytest
from fake_population import LABELS, METRICS, planted_table
from matplotlib.figure import Figure
from threadpoolctl import threadpool_limits

from linkviz.controllers import ConceptRanking, PopulationAnalysis, PopulationView

UNITS = np.arange(100, 112)


@pytest.fixture(scope="module")
def analysis() -> PopulationAnalysis:
    with threadpool_limits(limits=1):
        return PopulationAnalysis(planted_table(UNITS), perplexity=3, max_iter=250)


def test_label_vectors_sparsity_and_strongest_labels(analysis):
    assert analysis.units.tolist() == UNITS.tolist()
    assert analysis.vectors.labels == LABELS and analysis.vectors.metrics == METRICS
    planted = np.array(["ear", "eye", "nose"] * 4, dtype=object)
    assert analysis.embedding.strongest_label.tolist() == planted.tolist()
    ranking = analysis.sparsity_ranking()
    assert sorted(ranking["unit"]) == UNITS.tolist() and ranking["sparsity"].is_monotonic_decreasing
    values = np.abs(analysis.vectors.values)  # (U, L, M): Hoyer's index over the labels, by hand
    n = len(LABELS)
    hoyer = (np.sqrt(n) - values.sum(1) / np.sqrt((values**2).sum(1))) / (np.sqrt(n) - 1)
    expected = pd.Series(hoyer.mean(1), index=UNITS)
    np.testing.assert_allclose(ranking["sparsity"], expected[ranking["unit"]].to_numpy())
    planted_metric = np.array([0, 1, 0] * 4)  # ear area, eye luminance, nose area
    assert (hoyer[np.arange(12), planted_metric] > 0.7).all()  # each unit changes one label of its metric
    options = analysis.sparsity_options()
    assert [unit for _, unit in options] == ranking["unit"].tolist() and "(sparsity " in options[0][0]
    changes = analysis.largest_changes(101, count=2)
    assert (changes["label"].iloc[0], changes["metric"].iloc[0]) == ("eye", "luminance")
    assert changes["change"].iloc[0] < -0.3
    assert analysis.describe(101).startswith("unit <b>101</b>, strongest label <b>eye</b>")
    with pytest.raises(ValueError, match="unit 7 is not in the table"):
        analysis.check_unit(7)


def test_clusters_recover_the_planted_groups(analysis):
    view = analysis.compute(3, selected=104)
    assert isinstance(view, PopulationView) and view.n_clusters == 3 and view.selected == 104
    clusters = view.clustering.clusters
    for group in range(3):  # every planted group is one cluster
        assert len(set(clusters[group::3])) == 1
    assert len(set(clusters[:3])) == 3

    frame = view.to_frame()
    assert frame["unit"].tolist() == UNITS.tolist()
    assert {"x", "y", "strongest_label", "cluster", "sparsity_area", "sparsity_luminance", "selected"} <= set(frame)
    assert frame.loc[frame["selected"], "unit"].tolist() == [104]
    np.testing.assert_array_equal(frame[["x", "y"]].to_numpy(), analysis.embedding.coordinates)
    with pytest.raises(ValueError, match="not in the table"):
        analysis.compute(3, selected=7)


def _ticks(ax) -> tuple[list[str], list[str]]:
    return [t.get_text() for t in ax.get_yticklabels()], [t.get_text() for t in ax.get_xticklabels()]


def test_figures_have_labelled_rows_and_columns(analysis):
    view = analysis.compute(2)
    clustermap = view.clustermap_figure()
    assert isinstance(clustermap, Figure) and len(clustermap.axes) == 4  # tree, cluster strip, heat map, colour bar
    heat = clustermap.axes[2]
    rows, columns = _ticks(heat)
    assert sorted(int(unit) for unit in rows) == UNITS.tolist() and len(rows) == 12
    assert columns == analysis.vectors.column_names == [f"{label}/{metric}" for label in LABELS for metric in METRICS]
    sparsity = view.sparsity_figure()
    assert isinstance(sparsity, Figure) and len(sparsity.axes) == 1
    whole = view.figure()
    assert isinstance(whole, Figure)
    assert len(_all_axes(whole)) == 2 + 4  # sparsity, tSNE; the cluster map's four


def _all_axes(figure) -> set:
    """Every axes of a figure and its subfigures."""
    return set(figure.axes).union(*(_all_axes(sub) for sub in figure.subfigs))


def test_concept_finder_ranks_the_planted_units(analysis):
    ranking = analysis.find_concept("eye", "luminance", "decrease")
    assert isinstance(ranking, ConceptRanking) and ranking.sign == -1
    assert set(ranking.units[:4]) == set(UNITS[1::3]) and (ranking.table["effect"].iloc[:4] > 0.3).all()
    assert ranking.to_frame()["rank"].tolist() == list(range(1, len(ranking.table) + 1))
    assert f"<b>luminance</b> of <b>eye</b> decreases: {len(ranking.table)} units" in ranking.html
    assert "effect [CI]" in ranking.html and "selectivity" in ranking.options()[0][0]
    top = ranking.table.iloc[0]
    assert f"{top.effect:.3g} [{top.ci_low:.3g}, {top.ci_high:.3g}]" in ranking.html  # effect with its interval
    one = ConceptRanking(label="eye", metric="luminance", sign=-1, table=ranking.table.iloc[:1])
    assert "decreases: 1 unit<" in one.html and "1 units" not in one.html
    assert [unit for _, unit in ranking.options()] == ranking.units
    figure = ranking.figure()
    rows, _ = _ticks(figure.axes[0])
    assert rows == [f"unit {unit}" for unit in ranking.units]
    assert "luminance of eye decreases" in figure.get_suptitle()

    view = analysis.compute(3, concept=ranking)
    frame = view.to_frame().set_index("unit")
    assert frame.loc[ranking.units[0], "concept_rank"] == 1 and frame["concept_rank"].isna().sum() == 12 - len(
        ranking.units)
    whole = view.figure()
    assert len(_all_axes(whole)) == 2 + 4 + 1  # and the concept's effects

    none = ConceptRanking(label="ear", metric="area", sign=-1, table=ranking.table.iloc[:0])  # nothing found
    assert len(none.table) == 0 and "no unit changes it" in none.html and none.options() == []
    assert isinstance(none.figure(), Figure)


def test_an_empty_sweep_is_named_as_such_not_a_sparsity_error():
    from linkviz.quantify import ChangeTable

    for empty in (ChangeTable.concat([]), planted_table(np.arange(3)).frame.iloc[:0]):
        with pytest.raises(ValueError, match=r"change table is empty \(0 rows\).*run the sweep over at least one unit"):
            PopulationAnalysis(empty)
    with pytest.raises(TypeError, match="table must be a ChangeTable or a DataFrame of changes, got list"):
        PopulationAnalysis([])


# --- agreement of dissection, LaViSE and tuning ---

def planted_labels() -> tuple[pd.DataFrame, pd.DataFrame]:
    """Dissection and LaViSE tables that agree with the planted tuning (ear, eye, nose, ...) except on four units:
    101 all disagree (nose, ear, eye), 102 a weak dissection label (two agree, no flag), 104 LaViSE dissents
    (two agree, flagged), 105 no labels but tuning's."""
    planted = dict(zip(UNITS.tolist(), ["ear", "eye", "nose"] * 4))
    dissection = pd.DataFrame({"unit": UNITS, "label": [planted[u] for u in UNITS], "iou": 0.2})
    dissection.loc[dissection["unit"] == 101, "label"] = "nose"
    dissection.loc[dissection["unit"] == 102, "iou"] = 0.01
    dissection.loc[dissection["unit"] == 105, ["label", "iou"]] = ["none", 0.0]
    words = {u: ["umbrella", planted[u]] for u in UNITS.tolist() if u != 105}
    words[101], words[104] = ["ear"], ["nose", "eye"]
    lavise = pd.DataFrame([(u, rank, word) for u, ws in words.items() for rank, word in enumerate(ws)],
                          columns=["unit", "rank", "word"])
    return dissection, lavise


def test_the_map_is_coloured_by_method_agreement_and_disagreements_are_listed(analysis):
    from linkviz.figures.population import agreement_figure
    from linkviz.quantify.method_agreement import concept_vocabulary

    with pytest.raises(ValueError, match="colour_by='agreement' needs the methods' agreement"):
        analysis.compute(3, colour_by="agreement")
    with pytest.raises(ValueError, match="colour_by must be one of .* got 'cluster'"):
        analysis.compute(3, colour_by="cluster")
    assert analysis.flagged_options() == []
    own = copy.copy(analysis)  # the module's analysis stays without an agreement
    dissection, lavise = planted_labels()
    agreement = own.compute_agreement(concept_vocabulary(parts=LABELS), dissection=dissection, lavise=lavise,
                                      extra=pd.DataFrame({"unit": [100], "causal_score": [0.9]}))
    levels = dict(zip(own.embedding.units.tolist(), own.groups("agreement")))
    assert {u: level for u, level in levels.items() if level != "all agree"} == {
        101: "all disagree", 102: "two agree", 104: "two agree", 105: "not enough labels"}
    assert own.groups("strongest_label").tolist() == own.embedding.strongest_label.tolist()
    options = own.flagged_options()
    assert [unit for _, unit in options] == [101, 104]
    assert options[1][0] == "unit 104: two agree; dissection eye, lavise nose, tuning eye"
    assert "methods: <b>all disagree</b>" in own.describe(101) and "LaViSE ear -&gt; ear" in own.describe(101)

    view = own.compute(3, selected=104, colour_by="agreement")
    frame = view.to_frame().set_index("unit")
    assert frame.loc[[101, 104], "flagged"].all() and frame["flagged"].sum() == 2
    assert frame.loc[104, "dissenter"] == "lavise" and frame.loc[104, "lavise_words"] == "nose eye"
    assert frame.loc[100, "causal_score"] == 0.9 and frame["causal_score"].isna().sum() == 11
    whole = view.figure()
    assert len(whole.axes) == 2  # the agreement map and the counts
    legend = [text.get_text() for text in whole.axes[0].get_legend().get_texts()]
    assert legend == ["all agree (8)", "two agree (2)", "all disagree (1)", "not enough labels (1)"]
    bars = [patch.get_width() for patch in whole.axes[1].patches]
    assert bars == [8, 2, 1, 1]
    named = sorted(text.get_text() for text in whole.axes[0].texts if text.get_text().isdigit())
    assert named == ["101", "104"]  # flagged units are named on the map
    plain = own.compute(3).figure()  # coloured by strongest label: the paper's population figure
    assert len(_all_axes(plain)) == 2 + 4
    partial = agreement_figure(own.embedding, agreement, max_named=1)
    assert [t.get_text() for t in partial.axes[0].texts if t.get_text().isdigit()] == ["101"]
