"""LinkExplorer: held-out images next to their cycled versions G(link(r(G(w)))), and the link's metrics."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as ipw

from linkviz.controllers.link_exploring import LinkExploring, LinkPageView
from linkviz.linking.evaluate import LinkEvaluation
from linkviz.linking.link import LinearLink
from linkviz.linking.linked_model import LinkedModel
from linkviz.linking.mlp import MLPLink
from linkviz.linking.refine import RefinedLink
from linkviz.pairs import PairSet
from linkviz.widgets.base import ViewWidget

__all__ = ["LinkExplorer"]


class LinkExplorer(ViewWidget):
    """Original test images (top row) above their cycled images, a slider over the examples and the metrics table.

    A thin view over :class:`linkviz.controllers.LinkExploring`: the held-out metrics come from one
    :func:`linkviz.linking.evaluate_link` call at construction; each move of the slider asks for one
    :class:`~linkviz.controllers.LinkPageView` (originals and cycled latents ``w~`` in one generator pass) in a
    latest-wins worker.

    Parameters
    ----------
    linked : LinkedModel
        The models and the link.
    test_pairs : PairSet
        Held-out pairs (not used to fit the link).
    per_page : int
        Examples shown at once, starting at the slider's example.
    evaluation : LinkEvaluation, optional
        A precomputed evaluation of the link on ``test_pairs`` (skips the evaluation).
    link : LinearLink, MLPLink or RefinedLink, optional
        The link to evaluate and show; default ``linked.link``; e.g. ``linked.refined_link()`` on the faces
        world, where the linear link is only a first guess.
    progress : bool
        Show a progress bar while evaluating.
    """

    shown: LinkPageView

    def __init__(self, linked: LinkedModel, test_pairs: PairSet, *, per_page: int = 6,
                 evaluation: LinkEvaluation | None = None, link: LinearLink | MLPLink | RefinedLink | None = None,
                 progress: bool = False) -> None:
        self.controller = LinkExploring(linked, test_pairs, per_page=per_page, evaluation=evaluation, link=link,
                                        progress=progress)
        self.linked, self.test_pairs, self.per_page = linked, test_pairs, per_page
        self.evaluation = self.controller.evaluation
        self.example = ipw.IntSlider(value=0, min=0, max=len(test_pairs) - 1, description="example",
                                     continuous_update=False)
        self._init_view(name="LinkExplorer")
        self.examples_table = self.label
        self.metrics = ipw.HTML(self.controller.metrics_html())
        self.example.observe(self._on_example, names="value")
        super().__init__([self.example, self.image, self.examples_table, self.error, self.metrics,
                          self._export_bar()])
        self._show(self.controller.compute(0))

    def _on_example(self, change: dict) -> None:
        self._request(self.controller.compute, int(change["new"]))

    def _show(self, view: LinkPageView) -> None:
        super()._show(view)
        self.examples_table.value = view.table_html

    def _snapshot_parts(self) -> Sequence[str]:
        return (self.examples_table.value, self.error.value, self.metrics.value)
