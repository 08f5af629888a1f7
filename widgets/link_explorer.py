"""LinkExplorer: held-out images next to their cycled versions G(link(r(G(w)))), and the link's metrics."""

from __future__ import annotations

from dataclasses import dataclass
from functools import partial

import ipywidgets as ipw
import numpy as np
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import with_snapshot

from linkviz.linking.evaluate import LinkEvaluation, evaluate_link
from linkviz.linking.linked_model import LinkedModel
from linkviz.pairs import PairSet
from linkviz.plotting.images import encode_image, tile_images

__all__ = ["LinkExplorer"]

_TILE_PIXELS = 128
_EXAMPLE_COLUMNS = ("w_mse", "perceptual_distance", "pixel_l1")


@dataclass(frozen=True)
class _Page:
    image: bytes
    table: str
    first: int
    rows: tuple[int, ...]


class LinkExplorer(ipw.VBox):
    """Original test images (top row) above their cycled images, a slider over the examples and the metrics table.

    The held-out metrics come from one :func:`linkviz.linking.evaluate_link` call at construction; each move of
    the slider renders one page (originals and cycled latents ``w~``) in one generator pass, in a
    :class:`LatestWinsWorker`.

    Parameters
    ----------
    linked : LinkedModel
        The models and the link.
    test_pairs : PairSet
        Held-out pairs (not used to fit the link).
    per_page : int
        Examples shown at once, starting at the slider's example.
    evaluation : LinkEvaluation, optional
        A precomputed evaluation of ``linked.link`` on ``test_pairs`` (skips the evaluation).
    progress : bool
        Show a progress bar while evaluating.
    """

    def __init__(self, linked: LinkedModel, test_pairs: PairSet, *, per_page: int = 6,
                 evaluation: LinkEvaluation | None = None, progress: bool = False) -> None:
        if per_page < 1:
            raise ValueError(f"per_page must be positive, got {per_page}")
        if evaluation is None:
            evaluation = evaluate_link(linked.link, linked.generator, linked.classifier, test_pairs,
                                       device=linked.device, progress=progress)
        if len(evaluation) != len(test_pairs):
            raise ValueError(f"evaluation has {len(evaluation)} examples but test_pairs has {len(test_pairs)}")
        self.linked, self.test_pairs, self.evaluation, self.per_page = linked, test_pairs, evaluation, per_page
        self.example = ipw.IntSlider(value=0, min=0, max=len(test_pairs) - 1, description="example",
                                     continuous_update=False)
        self.image = ipw.Image(format="jpeg")
        self.examples_table = ipw.HTML()
        self.metrics = ipw.HTML(self._metrics_html())
        self.error = ipw.HTML()
        self.worker = LatestWinsWorker(self._show, self._show_error, name="LinkExplorer")
        self.example.observe(self._on_example, names="value")
        super().__init__([self.example, self.image, self.examples_table, self.error, self.metrics])
        self.shown = self._compute(0)
        self._show(self.shown)

    def _on_example(self, change: dict) -> None:
        self.worker.submit(partial(self._compute, int(change["new"])))

    def _metrics_html(self) -> str:
        table = self.evaluation.to_frame().to_html(index=False, border=0, float_format=lambda x: f"{x:.4g}")
        return (f"<b>Held-out cycle consistency</b> over {len(self.evaluation)} test pairs "
                f"(w → G → classifier → r → link → w~ → G):{table}")

    def _compute(self, first: int) -> _Page:
        rows = tuple(range(first, min(first + self.per_page, len(self.test_pairs))))
        index = list(rows)
        images = self.linked.render(np.concatenate([self.test_pairs.w[index], self.evaluation.w_linked[index]]))
        zoom = max(1, _TILE_PIXELS // images.shape[1])
        grid = tile_images(images, columns=len(rows), zoom=zoom, gap=1)
        return _Page(encode_image(grid, format="jpeg"), self._examples_html(index), first, rows)

    def _examples_html(self, index: list[int]) -> str:
        names = np.asarray(self.linked.class_names, dtype=object)
        frame = self.evaluation.per_example_frame().iloc[index]
        table = frame.assign(example=index, label=names[frame["labels"]],
                             original=names[frame["predicted_original"]],
                             cycled=names[frame["predicted_cycled"]])
        table = table[["example", "label", "original", "cycled", *_EXAMPLE_COLUMNS]]
        return ("Top: originals G(w); bottom: cycled G(w~). Predicted classes and per-example metrics:"
                + table.to_html(index=False, border=0, float_format=lambda x: f"{x:.4g}"))

    def _show(self, page: _Page) -> None:
        self.shown = page
        self.image.value = page.image
        self.examples_table.value = page.table
        self.error.value = ""

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (image, per-example and summary tables)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.examples_table.value,
                             self.metrics.value)

