"""FilterExplainer: a unit's LaViSE words with their votes, next to its top images and its activation maps on them."""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import partial

import ipywidgets as ipw
import numpy as np
import torch
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import with_snapshot
from torch import nn

from linkviz.dissection.broden import ProbeDataset
from linkviz.dissection.tally import upsample
from linkviz.lavise.explain import LaviseExplanation
from linkviz.lavise.features import eval_mode, layer_maps
from linkviz.models.classifier import Classifier, ClassifierSpec, unwrap_classifier
from linkviz.models.modules import module_device
from linkviz.plotting.images import encode_image, tile_images

__all__ = ["FilterExplainer", "heat_overlay", "unit_maps"]

_TILE_PIXELS = 96
_HEAT_ALPHA = 0.6
_WORDS_SHOWN = 10


@dataclass(frozen=True, eq=False)
class _View:
    unit: int
    images: tuple[int, ...]
    image: bytes
    maps: bool


def unit_maps(model: nn.Module | Classifier, layer: str, images: np.ndarray, unit: int, *,
              spec: ClassifierSpec | None = None, device: str | torch.device | None = None) -> np.ndarray:
    """One unit's activation maps on some images, upsampled bilinearly to the image size.

    Parameters
    ----------
    model : nn.Module or Classifier
        Run in eval mode (each submodule's mode is restored).
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
    """
    module, spec = unwrap_classifier(model, spec)
    device = module_device(module) if device is None else torch.device(device)
    with eval_mode(module):
        maps = layer_maps(module, layer, images, spec=spec, device=device)
    if not 0 <= unit < maps.shape[1]:
        raise ValueError(f"unit {unit} is out of range [0, {maps.shape[1]}) for layer {layer!r}")
    return upsample(maps[:, unit:unit + 1].cpu(), tuple(images.shape[1:3]))[:, 0].numpy()


def heat_overlay(images: np.ndarray, maps: np.ndarray, *, alpha: float = _HEAT_ALPHA) -> np.ndarray:
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


def _row(explanation: LaviseExplanation, unit: int) -> int:
    """Row of ``unit`` in the explanation's per-unit arrays."""
    return int(np.nonzero(explanation.units == unit)[0][0])


class FilterExplainer(ipw.VBox):
    """The words LaViSE gives a unit, with their votes, beside its top images and the unit's maps on them.

    The words and per-image nearest words come from ``explanation``. With ``model``, a second row shows the
    unit's activation map on each top image as a heat map (one forward pass of ``k`` images per unit change,
    in a :class:`LatestWinsWorker`, cached per unit).

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
    unit : int, optional
        Initial unit (default the first explained).
    k : int
        Top images shown (the first ``k`` where the unit is active).

    Raises
    ------
    ValueError
        For an explanation without units, a bad ``k``, or images that do not match the explanation.
    KeyError
        If ``unit`` was not explained.
    """

    def __init__(self, explanation: LaviseExplanation, probe: ProbeDataset | np.ndarray, *,
                 model: nn.Module | Classifier | None = None, spec: ClassifierSpec | None = None,
                 device: str | torch.device | None = None, unit: int | None = None, k: int = 5) -> None:
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
        unit = int(explanation.units[0]) if unit is None else int(unit)
        explanation.words(unit)  # KeyError for a unit that was not explained

        self.unit = ipw.Dropdown(options=[(self._option(int(u)), int(u)) for u in explanation.units], value=unit,
                                 description="unit")
        self.image = ipw.Image(format="png")
        self.words = ipw.HTML()
        self.image_words = ipw.HTML()
        self.error = ipw.HTML()
        self.worker = LatestWinsWorker(self._show, self._show_error, name="FilterExplainer")
        self.unit.observe(self._on_unit, names="value")
        super().__init__([self.unit, ipw.HBox([self.words, ipw.VBox([self.image, self.image_words])]),
                          self.error])
        self._show(self._compute(unit))

    def _option(self, unit: int) -> str:
        words = self.explanation.words(unit)[:3]
        return f"unit {unit}: {', '.join(words) if words else '(inactive)'}"

    def _on_unit(self, change: dict) -> None:
        self.worker.submit(partial(self._compute, int(change["new"])))

    # --- compute (worker thread) ---

    def _shown_images(self, unit: int) -> np.ndarray:
        row = _row(self.explanation, unit)
        return self.explanation.top_images[row][self.explanation.valid[row]][:self.k]

    def _compute(self, unit: int) -> _View:
        indices = self._shown_images(unit)
        if not len(indices):
            return _View(unit, (), b"", maps=False)
        images = self.images[indices]
        rows = [images]
        if self.model is not None:
            if unit not in self._maps_cache:
                self._maps_cache[unit] = unit_maps(self.model, self.explanation.layer, images, unit, spec=self.spec,
                                                   device=self.device)
            rows.append(heat_overlay(images, self._maps_cache[unit]))
        zoom = max(1, _TILE_PIXELS // images.shape[1])
        grid = tile_images(np.concatenate(rows), columns=len(indices), zoom=zoom, gap=1)
        return _View(unit, tuple(int(i) for i in indices), encode_image(grid, format="png"),
                     maps=self.model is not None)

    # --- results -> traits ---

    def _words_html(self, unit: int) -> str:
        frame = self.explanation.to_frame()
        frame = frame[frame.unit == unit].head(_WORDS_SHOWN)
        if frame.empty:
            return f"unit <b>{unit}</b>: no words (inactive on every top image)"
        total = float(frame.votes.sum())
        rows = "".join(f"<tr><td>{r.rank + 1}</td><td><b>{html.escape(r.word)}</b></td><td>{r.votes:.3g}</td>"
                       f"<td>{r.votes / total:.0%}</td></tr>" for r in frame.itertuples(index=False))
        return (f"Words of unit <b>{unit}</b> ({self.explanation.layer}), voted over its top images:"
                f"<table><tr><th>#</th><th>word</th><th>votes</th><th>share</th></tr>{rows}</table>")

    def _image_words_html(self, view: _View) -> str:
        if not view.images:
            return ""
        row = _row(self.explanation, view.unit)
        slots = np.nonzero(self.explanation.valid[row])[0][:len(view.images)]
        s = self.explanation.s
        cells = []
        for slot, image in zip(slots, view.images):
            ids = self.explanation.image_word_ids[row, slot, :s]
            similarity = self.explanation.image_similarity[row, slot, :s]
            words = ", ".join(f"{html.escape(self.explanation.vocabulary[i])} ({c:.2f})"
                              for i, c in zip(ids, similarity))
            cells.append(f"<tr><td>{image}</td><td>{self.explanation.image_activation[row, slot]:.3g}</td>"
                         f"<td>{words}</td></tr>")
        caption = "Top: top images" + ("; below: the unit's activation map (heat, scaled per image)"
                                       if view.maps else "")
        return (f"{caption}. Nearest words of each image (cosine similarity):"
                f"<table><tr><th>image</th><th>max activation</th><th>words</th></tr>{''.join(cells)}</table>")

    def _show(self, view: _View) -> None:
        self.shown = view
        self.image.value = view.image
        self.words.value = self._words_html(view.unit)
        self.image_words.value = self._image_words_html(view)
        self.error.value = ""

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (images with maps, the words and the per-image words)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.words.value,
                             self.image_words.value, self.error.value)
