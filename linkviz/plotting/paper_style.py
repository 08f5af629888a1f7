"""The paper style: vector figures with raster images, embedded TrueType fonts and byte-identical saves.

Everything goes through :func:`paper_style`, a :func:`matplotlib.rc_context` (the user's rcParams are never
changed), and figures are :class:`matplotlib.figure.Figure` objects made directly, never through pyplot, so
making or saving one never changes the backend or shows anything.

Choices, and why:

- **Fonts**: DejaVu Sans, which ships with matplotlib, so the same glyphs are used on every machine.
  PDF and PostScript embed it as TrueType (``pdf.fonttype = ps.fonttype = 42``): journals reject Type 3
  bitmap-like fonts, and Type 42 text stays selectable and editable. SVG keeps text as text
  (``svg.fonttype = "none"``): SVG is the format for editing a figure in Inkscape or Illustrator, where labels
  must stay editable and searchable; the PDF is the format whose look is exact (fonts embedded). An SVG viewer
  without DejaVu Sans falls back to another sans-serif face.
- **Sizes**: fixed point sizes (7 pt text, 6 pt ticks and legends, 8 pt titles) that stay legible when a
  figure is printed at one (3.5 in) or two (7 in) column widths, so figures are made at their printed size.
- **Images** stay raster inside the vector file and are not resampled: ``image.interpolation = "none"``
  embeds each image's own pixels (PDF and SVG viewers scale them with nearest neighbour; matplotlib's SVG
  writer marks them ``image-rendering: pixelated``), and raster output (PNG) falls back to nearest
  neighbour. ``"nearest"`` would resample every image to the save dpi first.
- **Deterministic bytes**: :func:`save_figure` drops the dates and the matplotlib version from the metadata
  (PDF ``CreationDate``, ``ModDate``, ``Producer``; SVG ``Date``; PNG ``Software``) and fixes the salt of
  the SVG element ids (``svg.hashsalt``), so the same figure gives the same bytes on every save and in every
  process.
"""

from __future__ import annotations

import io
import pickle
import re
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["DOUBLE_COLUMN", "FORMATS", "PAPER_RC", "SINGLE_COLUMN", "paper_figure", "paper_style", "save_figure"]

SINGLE_COLUMN = 3.5
"""Width of a one-column figure, in inches."""
DOUBLE_COLUMN = 7.0
"""Width of a two-column figure, in inches."""
FORMATS = ("pdf", "svg", "png")
"""The formats :func:`save_figure` writes."""
PRODUCER = "linkviz"
_LAYOUT_PASSES = 4  # constrained layout moves axes by ~1e-3 of the figure after its second pass, less after
_LAYOUT_SETTLED = 1e-4  # of the figure size: 0.05 pt on a 7 in figure

PAPER_RC: dict[str, Any] = {
    # fonts: one bundled face, embedded as TrueType (Type 42) in PDF/PS, text kept as text in SVG
    "font.family": "sans-serif",
    "font.sans-serif": ["DejaVu Sans"],
    "mathtext.fontset": "dejavusans",
    "pdf.fonttype": 42,
    "ps.fonttype": 42,
    "svg.fonttype": "none",
    "text.usetex": False,
    # fixed sizes, in points
    "font.size": 7.0,
    "axes.titlesize": 8.0,
    "axes.labelsize": 7.0,
    "xtick.labelsize": 6.0,
    "ytick.labelsize": 6.0,
    "legend.fontsize": 6.0,
    "legend.title_fontsize": 6.0,
    "figure.titlesize": 8.0,
    "figure.labelsize": 7.0,
    # thin lines
    "axes.linewidth": 0.6,
    "lines.linewidth": 1.0,
    "patch.linewidth": 0.6,
    "xtick.major.width": 0.6,
    "ytick.major.width": 0.6,
    "xtick.major.size": 2.5,
    "ytick.major.size": 2.5,
    "legend.frameon": False,
    # raster images embedded as they are
    "image.interpolation": "none",
    "image.resample": False,
    "image.composite_image": False,
    # saving: deterministic, white, at the figure's own size
    "svg.hashsalt": "linkviz",
    "svg.image_inline": True,
    "pdf.compression": 6,
    "savefig.dpi": 300,
    "savefig.bbox": None,
    "savefig.facecolor": "white",
    "savefig.transparent": False,
    "figure.dpi": 100,
    "figure.facecolor": "white",
}
"""The rcParams of the paper style (see the module docstring for why)."""

_METADATA = {
    "pdf": {"CreationDate": None, "ModDate": None, "Producer": PRODUCER, "Creator": PRODUCER},
    "svg": {"Date": None, "Creator": PRODUCER},
    "png": {"Software": PRODUCER},
}


@contextmanager
def paper_style(**overrides: Any) -> Iterator[None]:
    """Use the paper style inside a ``with`` block (a :func:`matplotlib.rc_context`; nothing global changes).

    Parameters
    ----------
    **overrides
        rcParams to set on top of :data:`PAPER_RC`, with dots written as such: ``paper_style(**{"font.size": 8})``.

    Notes
    -----
    Text takes its size when it is created and files take their font type when they are saved, so both the
    drawing of a figure and :func:`save_figure` run in this context.
    """
    import matplotlib

    with matplotlib.rc_context({**PAPER_RC, **overrides}):
        yield


#: matplotlib's clip-path ids in an SVG: "p" and 10 hex digits of a hash salted with memory addresses.
_CLIP_ID = re.compile(rb"(?<=[\"#])p[0-9a-f]{10}(?=[\")])")


def paper_figure(width: float = DOUBLE_COLUMN, height: float = 3.0, **kwargs: Any) -> Figure:
    """A new :class:`~matplotlib.figure.Figure` in the paper style with constrained layout (no pyplot).

    Call it inside :func:`paper_style` so that what is drawn on it takes the style's sizes.

    Parameters
    ----------
    width, height : float
        Size in inches (print size: :data:`SINGLE_COLUMN` or :data:`DOUBLE_COLUMN` wide).
    **kwargs
        Passed to :class:`~matplotlib.figure.Figure` (``layout`` defaults to ``"constrained"``).

    Returns
    -------
    matplotlib.figure.Figure
    """
    from matplotlib.figure import Figure

    kwargs.setdefault("layout", "constrained")
    with paper_style():
        return Figure(figsize=(width, height), **kwargs)


def save_figure(figure: Figure, path: str | Path, *, dpi: float = 300.0, format: str | None = None) -> Path:
    """Write a figure as PDF, SVG or PNG in the paper style, with the same bytes for the same figure.

    Parameters
    ----------
    figure : matplotlib.figure.Figure
    path : str or Path
        The file; its suffix gives the format unless ``format`` is given. Parent folders must exist.
    dpi : float
        Resolution of PNG output and of anything rasterised in vector output (images themselves are embedded at
        their own resolution, see the module docstring).
    format : {"pdf", "svg", "png"}, optional

    Returns
    -------
    Path
        ``path``.

    Raises
    ------
    ValueError
        For another format.

    Notes
    -----
    The file is written from a copy of the figure whose layout has been run until it settles and then frozen,
    so saving does not move the figure's axes and every save of the same figure writes the same bytes.
    """
    path = Path(path)
    chosen = (format or path.suffix.removeprefix(".")).lower()
    if chosen not in FORMATS:
        raise ValueError(f"can save {', '.join(FORMATS)}; got {chosen!r} (from {path.name!r})")
    with paper_style():
        if chosen == "svg":  # clip-path ids are hashed from object addresses: numbered in order instead
            buffer = io.BytesIO()
            _settled_copy(figure).savefig(buffer, format=chosen, dpi=dpi, metadata=_METADATA[chosen])
            path.write_bytes(_numbered_clip_ids(buffer.getvalue()))
        else:
            _settled_copy(figure).savefig(path, format=chosen, dpi=dpi, metadata=_METADATA[chosen])
    return path


def _numbered_clip_ids(svg: bytes) -> bytes:
    """The SVG with matplotlib's clip-path ids (``p`` + 10 hex digits, salted by memory addresses, so they change
    from process to process) renamed ``clip0``, ``clip1``, ... in order of first appearance."""
    names: dict[bytes, bytes] = {}

    def rename(match: re.Match[bytes]) -> bytes:
        return names.setdefault(match.group(0), b"clip%d" % len(names))

    return _CLIP_ID.sub(rename, svg)


def _axes_positions(figure: Figure) -> np.ndarray:
    """Bounds of every axes of the figure and its subfigures, shape (n_axes, 4)."""
    bounds = [ax.get_position().bounds for ax in figure.get_axes()]
    return np.asarray(bounds, dtype=np.float64).reshape(-1, 4)


def _settled_copy(figure: Figure) -> Figure:
    """A copy of the figure with its layout run until it has settled, and then frozen.

    A layout engine places the axes from the sizes of their tick labels, which depend on where the axes were,
    so every draw moves them a little (the constrained layout converges by a factor of about 4 per draw); saving
    the same figure twice would write different coordinates. The copy (a pickle round trip) leaves the caller's
    figure as it was, so every save starts from the same state and runs the same passes: the same bytes. A
    figure that cannot be pickled (an artist holding a lambda, say) is settled and saved in place instead.
    """
    try:
        copy = pickle.loads(pickle.dumps(figure))
    except (pickle.PicklingError, TypeError, AttributeError):
        copy = figure
    if copy.get_layout_engine() is None:
        return copy
    before = _axes_positions(copy)
    for _ in range(_LAYOUT_PASSES):
        copy.draw_without_rendering()
        after = _axes_positions(copy)
        if after.shape == before.shape and np.allclose(after, before, rtol=0.0, atol=_LAYOUT_SETTLED):
            break
        before = after
    copy.set_layout_engine("none")
    return copy
