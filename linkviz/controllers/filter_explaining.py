"""FilterExplaining: a unit's LaViSE words with their votes, its top images and its activation maps on them."""

from __future__ import annotations

import html
from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from torch import nn

from linkviz.controllers.view import GridView
from linkviz.dissection.probe_dataset import ProbeDataset
from linkviz.dissection.tally import upsample
from linkviz.images import tile_images
from linkviz.lavise.explain import LaviseExplanation
from linkviz.models import Classifier, ClassifierSpec, layer_activations

__all__ = ["ExplanationView", "FilterExplaining", "heat_overlay", "unit_maps"]

TILE_PIXELS = 96
HEAT_ALPHA = 0.6
WORDS_SHOWN = 10


def unit_maps(model: nn.Module | Classifier, layer: str, images: np.ndarray, unit: int, *,
              spec: ClassifierSpec | None = None, device: str | torch.device | None = None) -> np.ndarray:
    """One unit's activation maps on some images, upsampled bilinearly to the image size.

    Parameters
    ----------
    model : nn.Module or Classifier
        Run in eval mode (each submodule's mode is restored), through :func:`linkviz.models.layer_activations`.
    layer : str
        Dotted name of the layer.
    images : ndarray of uint8, shape (n, H, W, 3)
    unit : int
    spec : ClassifierSpec, optional
        Input preprocessing (default: a Classifier's spec).
    device : str or torch.device, optional
        Default: the model's device.

    Returns
    -------
    ndarray of float32, shape (n, H, W)

    Raises
    ------
    ValueError
        If ``unit`` is not a channel of the layer.
    """
    maps = layer_activations(model, layer, images, spec=spec, device=device)
    if not 0 <= unit < maps.shape[1]:
        raise ValueError(f"unit {unit} is out of range [0, {maps.shape[1]}) for layer {layer!r}")
    return upsample(maps[:, unit:unit + 1], tuple(images.shape[1:3]))[:, 0].numpy()


def heat_overlay(images: np.ndarray, maps: np.ndarray, *, alpha: float = HEAT_ALPHA) -> np.ndarray:
    """Images with a red-to-yellow heat map of non-negative maps, each scaled by its own maximum.

    Parameters
    ----------
    images : ndarray of uint8, shape (n, H, W, 3)
    maps : ndarray of float, shape (n, H, W)
    alpha : float
        Opacity of the heat colour where the map is at its maximum.

    Returns
    -------
    ndarray of uint8, shape (n, H, W, 3)
    """
    maps = np.clip(np.asarray(maps, np.float32), 0.0, None)
    peak = maps.reshape(len(maps), -1).max(axis=1)
    scaled = maps / np.where(peak > 0, peak, 1.0)[:, None, None]
    heat = np.stack([np.ones_like(scaled), scaled, np.zeros_like(scaled)], axis=-1) * 255.0
    weight = alpha * scaled[..., None]
    return np.round(images * (1.0 - weight) + heat * weight).astype(np.uint8)


@dataclass(frozen=True, eq=False, kw_only=True)
class ExplanationView(GridView):
    """A unit's top images (first row) and, with a model, its activation maps on them (second row).

    Attributes
    ----------
    unit : int
    layer : str
    images : tuple of int
        Probe indices of the top images shown (where the unit is active), one column each.
    maps : bool
        Whether the second row of heat maps was computed.
    heat : ndarray of float32, shape (len(images), H, W), or None
        The unit's maps on the images, upsampled to their size (None without a model).
    activation : ndarray of float32, shape (len(images),)
        The unit's spatial maximum on each image.
    words : DataFrame
        The unit's voted words: ``rank, word, votes, share`` (at most 10).
    image_words : tuple of tuple of (str, float)
        Each image's nearest words with their cosine similarity.
    words_html, image_words_html : str
        The two tables as HTML.
    """

    unit: int
    layer: str
    images: tuple[int, ...]
    maps: bool = False
    heat: np.ndarray | None = None
    activation: np.ndarray
    words: pd.DataFrame
    image_words: tuple[tuple[tuple[str, float], ...], ...] = ()
    words_html: str = ""
    image_words_html: str = ""

    def to_frame(self) -> pd.DataFrame:
        """One row per top image and nearest word: ``unit, image, activation, word_rank, word, similarity``
        (with maps also ``map_max``, the peak of the upsampled map)."""
        rows = []
        for column, (image, words) in enumerate(zip(self.images, self.image_words)):
            row = {"unit": self.unit, "image": image, "activation": float(self.activation[column])}
            if self.heat is not None:
                row["map_max"] = float(self.heat[column].max())
            rows.extend({**row, "word_rank": rank, "word": word, "similarity": similarity}
                        for rank, (word, similarity) in enumerate(words))
        columns = ["unit", "image", "activation", *(["map_max"] if self.heat is not None else []), "word_rank",
                   "word", "similarity"]
        return pd.DataFrame(rows, columns=columns)


class FilterExplaining:
    """The state behind :class:`linkviz.widgets.FilterExplainer`: which unit, and its words, images and maps.

    The words and per-image nearest words come from ``explanation``. With ``model``, a second row shows the
    unit's activation map on each top image as a heat map (one forward pass of ``k`` images per unit, cached).

    Parameters
    ----------
    explanation : LaviseExplanation
        From :func:`linkviz.lavise.explain_units`.
    probe : ProbeDataset or ndarray of uint8, shape (N, H, W, 3)
        The reference images the explanation was computed on.
    model : nn.Module or Classifier, optional
        The explained network, for the activation maps.
    spec : ClassifierSpec, optional
        Input preprocessing for ``model``.
    device : str or torch.device, optional
        Where ``model`` runs.
    k : int
        Top images shown (the first ``k`` where the unit is active).

    Raises
    ------
    ValueError
        For an explanation without units, a bad ``k``, or images that do not match the explanation.
    """

    def __init__(self, explanation: LaviseExplanation, probe: ProbeDataset | np.ndarray, *,
                 model: nn.Module | Classifier | None = None, spec: ClassifierSpec | None = None,
                 device: str | torch.device | None = None, k: int = 5) -> None:
        if not len(explanation.units):
            raise ValueError("the explanation has no units")
        if k < 1:
            raise ValueError(f"k must be positive, got {k}")
        images = probe.images if isinstance(probe, ProbeDataset) else np.asarray(probe)
        if explanation.top_images.size and explanation.top_images.max() >= len(images):
            raise ValueError(f"the explanation's top images index {explanation.top_images.max() + 1}+ images, "
                             f"the probe has {len(images)}")
        self.explanation, self.images, self.model, self.k = explanation, images, model, int(k)
        self.spec, self.device = spec, device
        self._maps_cache: dict[int, np.ndarray] = {}
        self._frame = explanation.to_frame()

    @property
    def units(self) -> tuple[int, ...]:
        """The explained units."""
        return tuple(int(u) for u in self.explanation.units)

    def option(self, unit: int) -> str:
        """``"unit 3: sky, grass, tree"``: a unit with its first three words (KeyError if not explained)."""
        words = self.explanation.words(unit)[:3]
        return f"unit {unit}: {', '.join(words) if words else '(inactive)'}"

    def compute(self, unit: int) -> ExplanationView:
        """The words, top images and (with a model) activation maps of ``unit``.

        Raises
        ------
        KeyError
            If ``unit`` was not explained.
        """
        unit = int(unit)
        row = self.explanation.row(unit)
        slots = np.nonzero(self.explanation.valid[row])[0][:self.k]
        indices = self.explanation.top_images[row][slots]
        words = self._words(unit)
        image_words = tuple(self._image_words(row, slot) for slot in slots)
        common = {"unit": unit, "layer": self.explanation.layer, "title": self.option(unit), "words": words,
                  "words_html": self._words_html(unit, words),
                  "activation": self.explanation.image_activation[row][slots]}
        if not len(indices):
            return ExplanationView(grid=np.full((1, 1, 3), 255, np.uint8), rows=1, columns=1, images=(),
                                   row_labels=("no active top image",), column_labels=("",),
                                   caption_html=f"unit <b>{unit}</b>: no words (inactive on every top image)",
                                   **common)
        images = self.images[indices]
        rows, heat = [images], None
        if self.model is not None:
            if unit not in self._maps_cache:
                self._maps_cache[unit] = unit_maps(self.model, self.explanation.layer, images, unit, spec=self.spec,
                                                   device=self.device)
            heat = self._maps_cache[unit]
            rows.append(heat_overlay(images, heat))
        zoom = max(1, TILE_PIXELS // images.shape[1])
        grid = tile_images(np.concatenate(rows), columns=len(indices), zoom=zoom, gap=1)
        shown = tuple(int(i) for i in indices)
        caption = "Top: top images" + ("; below: the unit's activation map (heat, scaled per image)"
                                       if heat is not None else "")
        voted = ", ".join(f"<b>{html.escape(r.word)}</b> ({r.votes:.3g})" for r in words.itertuples(index=False))
        return ExplanationView(
            grid=grid, rows=len(rows), columns=len(indices), row_labels=("top images", "activation map")[:len(rows)],
            column_labels=tuple(f"image {i}" for i in shown), caption_html=f"{caption}. Words (votes): {voted}.",
            images=shown, maps=heat is not None, heat=heat, image_words=image_words,
            image_words_html=self._image_words_html(caption, shown, image_words, common["activation"]), **common)

    def _words(self, unit: int) -> pd.DataFrame:
        frame = self._frame[self._frame.unit == unit].head(WORDS_SHOWN)
        total = float(frame.votes.sum())
        return pd.DataFrame({"rank": frame["rank"].to_numpy(), "word": frame["word"].to_numpy(),
                             "votes": frame["votes"].to_numpy(),
                             "share": frame["votes"].to_numpy() / (total if total else 1.0)})

    def _image_words(self, row: int, slot: int) -> tuple[tuple[str, float], ...]:
        s = self.explanation.s
        ids = self.explanation.image_word_ids[row, slot, :s]
        similarity = self.explanation.image_similarity[row, slot, :s]
        return tuple((self.explanation.vocabulary[i], float(c)) for i, c in zip(ids, similarity))

    def _words_html(self, unit: int, words: pd.DataFrame) -> str:
        if words.empty:
            return f"unit <b>{unit}</b>: no words (inactive on every top image)"
        rows = "".join(f"<tr><td>{r.rank + 1}</td><td><b>{html.escape(r.word)}</b></td><td>{r.votes:.3g}</td>"
                       f"<td>{r.share:.0%}</td></tr>" for r in words.itertuples(index=False))
        return (f"Words of unit <b>{unit}</b> ({self.explanation.layer}), voted over its top images:"
                f"<table><tr><th>#</th><th>word</th><th>votes</th><th>share</th></tr>{rows}</table>")

    @staticmethod
    def _image_words_html(caption: str, images: tuple[int, ...], image_words: tuple, activation: np.ndarray
                          ) -> str:
        cells = "".join(f"<tr><td>{image}</td><td>{value:.3g}</td><td>"
                        + ", ".join(f"{html.escape(word)} ({c:.2f})" for word, c in words) + "</td></tr>"
                        for image, value, words in zip(images, activation, image_words))
        return (f"{caption}. Nearest words of each image (cosine similarity):"
                f"<table><tr><th>image</th><th>max activation</th><th>words</th></tr>{cells}</table>")
