"""A Network Dissection report as one self-contained HTML file: header, bar graph, summary table, unit cards.

Images are embedded as base64 data URIs and the page loads nothing from the network. Size grows with the number
of cards: about ``units * k`` thumbnails (restrict ``units`` or use JPEG for large layers).
"""

from __future__ import annotations

import base64
import html
import io
from collections.abc import Sequence
from pathlib import Path
from typing import Literal

import numpy as np
from tqdm.auto import tqdm

from ..dissection.dissect import DissectionResult
from ..dissection.probe_dataset import ProbeDataset
from ..dissection.report import display_label, summary_line, summary_table, unit_images
from ..images import encode_image, tile_images
from .dissection_figures import plot_detectors_per_concept

__all__ = ["dissection_html", "write_dissection_html"]

_STYLE = """
body { font-family: system-ui, sans-serif; margin: 1.5em; color: #222; }
h1 { font-size: 1.4em; } h2 { font-size: 1.1em; margin-top: 1.5em; }
.summary { font-size: 1.1em; margin-bottom: 1em; }
table.units { border-collapse: collapse; font-size: 0.8em; }
table.units td, table.units th { border: 1px solid #ccc; padding: 2px 6px; text-align: right; }
details { margin: 1em 0; }
.sort button { margin-right: 0.4em; }
.cards { display: flex; flex-direction: column; gap: 0.8em; }
.card { border: 1px solid #ccc; border-radius: 4px; padding: 0.4em 0.6em; }
.card.low { opacity: 0.55; }
.card .head { font-size: 0.9em; margin-bottom: 0.3em; }
.card .head b { font-size: 1.1em; }
.card img { image-rendering: pixelated; max-width: 100%; }
"""

_SCRIPT = """
function sortCards(key, descending) {
  const box = document.getElementById('cards');
  const cards = Array.from(box.children);
  cards.sort((a, b) => (parseFloat(a.dataset[key]) - parseFloat(b.dataset[key])) * (descending ? -1 : 1));
  cards.forEach(card => box.appendChild(card));
}
"""


def _data_uri(image: np.ndarray, image_format: str) -> str:
    mime = "jpeg" if image_format.lower() in ("jpg", "jpeg") else image_format.lower()
    encoded = base64.b64encode(encode_image(image, format=image_format)).decode("ascii")
    return f"data:image/{mime};base64,{encoded}"


def _figure_uri(figure) -> str:
    import matplotlib.pyplot as plt

    buffer = io.BytesIO()
    figure.savefig(buffer, format="png", dpi=110)
    plt.close(figure)
    return "data:image/png;base64," + base64.b64encode(buffer.getvalue()).decode("ascii")


def _resized(images: np.ndarray, height: int | None) -> np.ndarray:
    if height is None or height == images.shape[1]:
        return images
    from PIL import Image

    width = max(1, round(images.shape[2] * height / images.shape[1]))
    method = Image.Resampling.NEAREST if height > images.shape[1] else Image.Resampling.LANCZOS
    return np.stack([np.asarray(Image.fromarray(image).resize((width, height), method)) for image in images])


def _card(result: DissectionResult, probe: ProbeDataset, row, *, rank: int, k: int | None,
          image_height: int | None, image_format: str) -> str:
    unit = int(row.unit)
    strip = _resized(unit_images(result, probe, unit, k=k).overlays(), image_height)
    uri = _data_uri(tile_images(strip, columns=len(strip), gap=3), image_format)
    label = "none" if row.label == "none" else display_label(row.label)
    low = "" if row.is_detector else " low"
    return (f'<div class="card{low}" data-unit="{unit}" data-iou="{row.iou:.6f}" data-rank="{rank}">'
            f'<div class="head"><b>{html.escape(label)}</b> &middot; unit {unit} &middot; '
            f'({html.escape(str(row.category))}) &middot; IoU {row.iou:.3f}</div>'
            f'<img alt="top images of unit {unit}" src="{uri}"></div>')


def dissection_html(result: DissectionResult, probe: ProbeDataset, *, title: str | None = None,
                    units: Sequence[int] | None = None, k: int | None = None,
                    order: Literal["unit", "iou", "label"] = "label", image_height: int | None = None,
                    image_format: Literal["png", "jpeg"] = "png", progress: bool = True) -> str:
    """The report page as an HTML string.

    Parameters
    ----------
    result : DissectionResult
        From :func:`~linkviz.dissection.dissect` with ``top_k > 0``.
    probe : ProbeDataset
        The probe it was computed on.
    title : str, optional
        Page title (default ``"Network Dissection: <layer>"``).
    units : sequence of int, optional
        Units that get a card (default all); the table always lists every unit.
    k : int, optional
        Top images per card (default all kept by the dissection).
    order : {"unit", "iou", "label"}
        Initial order of table rows and cards (the page can re-sort cards).
    image_height : int, optional
        Height of each thumbnail in pixels (default the probe's image size).
    image_format : {"png", "jpeg"}
    progress : bool
        Show a bar over the unit cards.

    Returns
    -------
    str
    """
    title = f"Network Dissection: {result.layer}" if title is None else title
    table = summary_table(result, order=order)
    wanted = set(range(len(result.thresholds)) if units is None else (int(u) for u in units))
    rows = [(rank, row) for rank, row in enumerate(table.itertuples(index=False)) if row.unit in wanted]
    cards = [_card(result, probe, row, rank=rank, k=k, image_height=image_height, image_format=image_format)
             for rank, row in tqdm(rows, desc=f"{result.layer}: report cards", disable=not progress)]
    bars = _figure_uri(plot_detectors_per_concept(result))
    table_html = table.to_html(index=False, classes="units", float_format=lambda v: f"{v:.4g}", border=0)
    buttons = ('<div class="sort">sort cards: <button onclick="sortCards(\'rank\', false)">label</button>'
               '<button onclick="sortCards(\'iou\', true)">IoU</button>'
               '<button onclick="sortCards(\'unit\', false)">unit</button></div>')
    return "\n".join([
        "<!DOCTYPE html>", '<html lang="en"><head><meta charset="utf-8">', f"<title>{html.escape(title)}</title>",
        f"<style>{_STYLE}</style><script>{_SCRIPT}</script></head><body>",
        f"<h1>{html.escape(title)}</h1>",
        (f'<div class="summary">{html.escape(summary_line(result))} ({result.mode} IoU, top '
         f"{result.quantile:g} quantile threshold, {result.counts.n_images} probe images)</div>"),
        f'<img alt="detectors per concept" src="{bars}">',
        f"<details><summary>Table of all {len(table)} units</summary>{table_html}</details>",
        f"<h2>Units ({len(cards)})</h2>", buttons, '<div class="cards" id="cards">', *cards, "</div>",
        "</body></html>",
    ])


def write_dissection_html(result: DissectionResult, probe: ProbeDataset, path: str | Path, **options) -> Path:
    """Write :func:`dissection_html` to ``path`` (UTF-8) and return the path; ``options`` as there."""
    path = Path(path)
    path.write_text(dissection_html(result, probe, **options), encoding="utf-8")
    return path
