"""The paper style: deterministic bytes per format, TrueType (Type 42) fonts in PDF, raster images unresampled,
nothing global changed and no pyplot involved."""

from __future__ import annotations

import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib
import numpy as np
import pytest

from linkviz.plotting.paper_style import FORMATS, PAPER_RC, paper_figure, paper_style, save_figure

ROOT = Path(__file__).resolve().parents[2]

# Builds one figure with an image, a line with a legend, a colour bar and titles, and saves it in every format.
_SCRIPT = """
import sys
import numpy as np
from linkviz.plotting.paper_style import paper_figure, paper_style, save_figure

with paper_style():
    figure = paper_figure(3.5, 2.2)
    left, right = figure.subplots(1, 2)
    left.imshow(np.arange(60, dtype=np.uint8).reshape(4, 5, 3) * 4)
    left.set_title("image 4 x 5")
    right.plot([0, 1, 2], [1, 3, 2], label="a line")
    right.legend()
    shown = right.imshow(np.linspace(0, 1, 9).reshape(3, 3), extent=(0, 2, 1, 3))
    figure.colorbar(shown, ax=right, label="value")
    figure.suptitle("determinism")
for name in ("first", "second"):
    for suffix in ("pdf", "svg", "png"):
        save_figure(figure, f"{sys.argv[1]}/{name}.{suffix}")
print(sorted(m for m in sys.modules if m.startswith("matplotlib.pyplot") or m.startswith("matplotlib.backends.backend_")))
"""


def _run(folder: Path, hash_seed: str) -> str:
    env = {**os.environ, "PYTHONHASHSEED": hash_seed}
    env.pop("MPLBACKEND", None)
    result = subprocess.run([sys.executable, "-c", _SCRIPT, str(folder)], capture_output=True, text=True, env=env,
                            cwd=ROOT, timeout=300, check=False)
    assert result.returncode == 0, result.stderr
    return result.stdout


@pytest.fixture(scope="module")
def two_runs(tmp_path_factory) -> tuple[Path, Path, str]:
    """The same figure saved twice in each of two interpreters with different hash seeds."""
    first, second = tmp_path_factory.mktemp("run1"), tmp_path_factory.mktemp("run2")
    modules = _run(first, "1")
    _run(second, "2")
    return first, second, modules


@pytest.mark.parametrize("suffix", FORMATS)
def test_the_same_figure_gives_the_same_bytes_on_every_save_and_in_every_process(two_runs, suffix):
    first, second, _ = two_runs
    data = (first / f"first.{suffix}").read_bytes()
    assert len(data) > 1000
    assert (first / f"second.{suffix}").read_bytes() == data  # saved twice in one process
    assert (second / f"first.{suffix}").read_bytes() == data  # and in another process


def test_files_carry_no_date_and_no_matplotlib_version(two_runs):
    first, _, _ = two_runs
    pdf, svg, png = ((first / f"first.{suffix}").read_bytes() for suffix in FORMATS)
    assert b"/CreationDate" not in pdf and b"/ModDate" not in pdf and b"/Producer (linkviz)" in pdf
    assert b"<dc:date>" not in svg and matplotlib.__version__.encode() not in svg
    assert b"tIME" not in png and matplotlib.__version__.encode() not in png


def test_pdf_embeds_truetype_fonts_and_no_type3(two_runs):
    pdf = (two_runs[0] / "first.pdf").read_bytes()
    assert b"/FontFile2" in pdf  # Type 42: the TrueType program itself is embedded (a subset of it)
    assert b"/Subtype /TrueType" in pdf or b"/Subtype /CIDFontType2" in pdf  # simple or CID-keyed TrueType
    assert b"/Type3" not in pdf and b"/CharProcs" not in pdf  # no Type 3 glyph procedures


def test_images_stay_raster_at_their_own_resolution(two_runs):
    first, _, _ = two_runs
    pdf = (first / "first.pdf").read_bytes()
    assert re.search(rb"/Subtype /Image\s*/Width 5\s*/Height 4", pdf)  # the 4 x 5 image, not resampled to dpi
    svg = (first / "first.svg").read_text()
    assert svg.count("<image") == 3  # the image, the colour-mapped one, the colour bar
    assert "image-rendering:pixelated" in svg.replace(" ", "")
    assert "font-family: 'DejaVu Sans'" in svg and "<text" in svg  # svg.fonttype "none": text stays text


def test_making_and_saving_needs_no_pyplot(two_runs):
    modules = two_runs[2]
    assert "matplotlib.pyplot" not in modules and "backend_agg" in modules  # Agg only to render PNG


def test_the_style_changes_nothing_outside_its_block(tmp_path):
    before = dict(matplotlib.rcParams)
    with paper_style(**{"font.size": 9.0}):
        assert matplotlib.rcParams["font.size"] == 9.0 and matplotlib.rcParams["pdf.fonttype"] == 42
        figure = paper_figure(2.0, 1.5)
        figure.add_subplot().plot([0, 1])
    save_figure(figure, tmp_path / "figure.svg")
    assert dict(matplotlib.rcParams) == before
    assert set(PAPER_RC) <= set(matplotlib.rcParams)


def test_saving_leaves_the_figure_as_it_was(tmp_path):
    with paper_style():
        figure = paper_figure(3.0, 2.0)
        ax = figure.add_subplot()
        ax.plot([0, 1], [0, 1])
    position = ax.get_position().bounds
    save_figure(figure, tmp_path / "figure.png", dpi=50)
    assert ax.get_position().bounds == position and figure.get_layout_engine() is not None


def test_other_formats_are_refused(tmp_path):
    figure = paper_figure(1.0, 1.0)
    with pytest.raises(ValueError, match="can save pdf, svg, png; got 'jpg'"):
        save_figure(figure, tmp_path / "figure.jpg")
    assert save_figure(figure, tmp_path / "figure", format="PNG").read_bytes().startswith(b"\x89PNG")


def test_paper_figures_are_pyplot_free_and_white(tmp_path):
    with paper_style():
        figure = paper_figure(2.0, 1.0)
        figure.add_subplot().imshow(np.zeros((2, 2, 3), np.uint8))
    assert type(figure.canvas).__name__ == "FigureCanvasBase" and figure.get_layout_engine() is not None


def test_svg_clip_ids_salted_by_memory_addresses_are_numbered_in_order():
    """matplotlib names clip paths by a hash salted with object addresses, which differ between notebook runs;
    saved SVGs number them instead, so two runs of a notebook write the same bytes."""
    from linkviz.plotting.paper_style import _numbered_clip_ids

    def svg(first: str, second: str) -> bytes:
        return (f'<clipPath id="{first}"/><clipPath id="{second}"/><g clip-path="url(#{second})"/>'
                f'<g clip-path="url(#{first})"/><text>p0123456789</text>').encode()

    one, other = svg("p87d4be33cc", "p0a1b2c3d4e"), svg("p696029f6ea", "pffffffffff")
    assert one != other and _numbered_clip_ids(one) == _numbered_clip_ids(other)
    assert _numbered_clip_ids(one) == (b'<clipPath id="clip0"/><clipPath id="clip1"/><g clip-path="url(#clip1)"/>'
                                       b'<g clip-path="url(#clip0)"/><text>p0123456789</text>')
