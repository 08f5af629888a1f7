"""The export bar of every widget: a click writes the paper figure (same bytes every time) and the view's table."""

from __future__ import annotations

import io

import pandas as pd
import pytest

from linkviz.pairs import sample_pairs
from linkviz.widgets import CounterfactualExplorer, LinkExplorer, UnitTuner


def _assert_csv_is_the_table(csv, frame: pd.DataFrame) -> None:
    written = pd.read_csv(csv)
    expected = pd.read_csv(io.StringIO(frame.to_csv(index=False)))  # the same types as read back from a file
    assert written.columns.tolist() == frame.columns.tolist() and len(written) == len(frame)
    pd.testing.assert_frame_equal(written, expected)
    pd.testing.assert_frame_equal(written, frame.reset_index(drop=True), check_dtype=False)


@pytest.fixture
def test_pairs(linked):
    return sample_pairs(linked.generator, linked.classifier, classes=[0], samples_per_class=6, seed=1,
                        truncation_psi=1.0, progress=False)


@pytest.fixture(params=["tuner", "links", "counterfactuals"])
def widget(request, identity_linked, linked):
    if request.param == "tuner":
        return UnitTuner(identity_linked, seeds=(0, 1), unit=2, arrows=True)
    if request.param == "links":
        return LinkExplorer(linked, request.getfixturevalue("test_pairs"), per_page=3)
    return CounterfactualExplorer(identity_linked, max_steps=100, n_alphas=3, top_k=2, origin=0, target=1)


def test_clicking_export_writes_the_figure_and_the_table(widget, tmp_path, monkeypatch):
    monkeypatch.chdir(tmp_path)
    bar = widget.children[-1]
    assert bar.children == (widget.export_format, widget.export_name, widget.export_button, widget.export_status)
    name = widget.export_name.value
    assert name.startswith(type(widget).__name__.lower()) and name.endswith(".pdf") and "/" not in name
    widget.export_button.click()
    figure, table = tmp_path / name, (tmp_path / name).with_suffix(".csv")
    assert figure.read_bytes().startswith(b"%PDF") and str(figure) in widget.export_status.value
    assert str(table) in widget.export_status.value and widget.export_status.value.startswith("wrote")
    _assert_csv_is_the_table(table, widget.shown.to_frame())
    first = figure.read_bytes()
    widget.export_button.click()
    assert figure.read_bytes() == first  # the same view, the same bytes


def test_the_file_name_follows_the_unit_and_the_format_until_the_user_names_it(identity_linked, tmp_path,
                                                                               monkeypatch):
    monkeypatch.chdir(tmp_path)
    tuner = UnitTuner(identity_linked, seeds=(0,), unit=0)
    assert tuner.export_name.value == "unittuner-unit0.pdf"
    tuner.unit.value = 1
    assert tuner.wait_idle(10) and tuner.shown.unit == 1
    assert tuner.export_name.value == "unittuner-unit1.pdf"
    tuner.export_format.value = "svg"
    assert tuner.export_name.value == "unittuner-unit1.svg"
    written = tuner.export_clicked()
    assert [path.name for path in written] == ["unittuner-unit1.svg", "unittuner-unit1.csv"]
    assert (tmp_path / "unittuner-unit1.svg").read_text().startswith("<?xml")

    tuner.export_name.value = "figures/strip"  # the user's own name: kept, given the format's suffix
    tuner.unit.value = 2
    assert tuner.wait_idle(10)
    assert tuner.export_name.value == "figures/strip"
    assert tuner.export_clicked() == ()  # the folder does not exist: the error is shown, not raised
    assert "figures" in tuner.export_status.value and "wrote" not in tuner.export_status.value
    (tmp_path / "figures").mkdir()
    tuner.export_format.value = "png"
    assert tuner.export_name.value == "figures/strip.png"
    tuner.export_button.click()
    assert (tmp_path / "figures" / "strip.png").read_bytes().startswith(b"\x89PNG")
    _assert_csv_is_the_table(tmp_path / "figures" / "strip.csv", tuner.shown.to_frame())


def test_export_from_python_needs_a_known_format(identity_linked, tmp_path):
    tuner = UnitTuner(identity_linked, seeds=(0,), unit=0)
    with pytest.raises(ValueError, match="can save pdf, svg, png; got 'jpg'"):
        tuner.export(tmp_path / "tuner.jpg")
    figure, = tuner.export(tmp_path / "tuner.pdf", table=False)
    assert figure.read_bytes().startswith(b"%PDF") and not (tmp_path / "tuner.csv").exists()
