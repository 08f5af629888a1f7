"""LinkExploring: pages of held-out images above their cycled versions G(link(r(G(w)))), with the link's metrics."""

from __future__ import annotations

import html
from dataclasses import dataclass
from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.controllers.view import GridView
from linkviz.figures.link_quality import link_quality_figure
from linkviz.images import tile_images
from linkviz.linking.evaluate import LinkEvaluation, evaluate_link
from linkviz.linking.link import LinearLink
from linkviz.linking.linked_model import LinkedModel
from linkviz.linking.mlp import MLPLink
from linkviz.linking.refine import RefinedLink
from linkviz.pairs import PairSet

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["LinkExploring", "LinkPageView"]

TILE_PIXELS = 128
EXAMPLE_METRICS = ("w_mse", "perceptual_distance", "pixel_l1")
_CAPTION = "Top: originals G(w); bottom: cycled G(w~)."


def _html_table(frame: pd.DataFrame) -> str:
    return frame.to_html(index=False, border=0, float_format=lambda x: f"{x:.4g}")


@dataclass(frozen=True, eq=False, kw_only=True)
class LinkPageView(GridView):
    """One page of held-out examples: originals (top row) above their cycled images (bottom row).

    Attributes
    ----------
    first : int
        The first example of the page.
    examples : tuple of int
        The examples shown, one column each (indices into the test pairs).
    table : DataFrame
        One row per example shown: ``example, label, original, cycled`` (class names of the conditioning label
        and of the classifier's predictions on ``G(w)`` and ``G(w~)``) and the metrics ``w_mse,
        perceptual_distance, pixel_l1``.
    """

    first: int
    examples: tuple[int, ...]
    table: pd.DataFrame

    @property
    def table_html(self) -> str:
        """The caption and the per-example table, as the widget shows them under the image."""
        return f"{self.caption_html} Predicted classes and per-example metrics:{_html_table(self.table)}"

    def to_frame(self) -> pd.DataFrame:
        """One row per example shown, with its classes and per-example metrics."""
        return self.table.reset_index(drop=True)

    def figure(self, *, width_inches: float = 7.0) -> Figure:
        """The paper's link-quality figure of this page (:func:`linkviz.figures.link_quality_figure`): originals
        above cycled images, and the page's metrics and class agreement."""
        return link_quality_figure(self.table, images=self, title=self.title, width=width_inches)


class LinkExploring:
    """The state behind :class:`linkviz.widgets.LinkExplorer`: the held-out evaluation and its pages.

    The metrics come from one :func:`linkviz.linking.evaluate_link` call at construction (unless given); each
    page renders its originals and cycled latents ``w~`` in one generator pass.

    Parameters
    ----------
    linked : LinkedModel
        The models and the link.
    test_pairs : PairSet
        Held-out pairs (not used to fit the link).
    per_page : int
        Examples on a page.
    evaluation : LinkEvaluation, optional
        A precomputed evaluation of the link on ``test_pairs``.
    link : LinearLink, MLPLink or RefinedLink, optional
        The link to evaluate and show; default ``linked.link``. Where the linear link is only a first guess
        (the faces world) pass ``linked.refined_link()``: its latents are refined by feature inversion.
    progress : bool
        Show a progress bar while evaluating.

    Raises
    ------
    ValueError
        If ``per_page`` is not positive or the evaluation does not match the test pairs.
    """

    def __init__(self, linked: LinkedModel, test_pairs: PairSet, *, per_page: int = 6,
                 evaluation: LinkEvaluation | None = None, link: LinearLink | MLPLink | RefinedLink | None = None,
                 progress: bool = False) -> None:
        if per_page < 1:
            raise ValueError(f"per_page must be positive, got {per_page}")
        self.link = linked.link if link is None else link
        if evaluation is None:
            evaluation = evaluate_link(self.link, linked.generator, linked.classifier, test_pairs,
                                       device=linked.device, progress=progress)
        if len(evaluation) != len(test_pairs):
            raise ValueError(f"evaluation has {len(evaluation)} examples but test_pairs has {len(test_pairs)}")
        self.linked, self.test_pairs, self.evaluation, self.per_page = linked, test_pairs, evaluation, per_page

    def __len__(self) -> int:
        return len(self.test_pairs)

    def agreement_text(self) -> str:
        """The class agreement next to its two baselines, in one sentence, e.g. "class agreement 0.62; always
        answering the majority class (neutral): 0.48; the link fed shuffled r: 0.45 — beats both by 0.14"."""
        evaluation = self.evaluation
        agreement = float(evaluation.class_agreement.mean())
        majority = float(evaluation.majority_agreement.mean())
        shuffled = float(evaluation.shuffled_agreement.mean())
        margin = agreement - max(majority, shuffled)
        verdict = f"beats both by {margin:.2f}" if margin > 0 else f"does not beat chance ({margin:+.2f})"
        name = self.linked.class_names[evaluation.majority_class]
        return (f"class agreement {agreement:.2f}; always answering the majority class ({name}): {majority:.2f}; "
                f"the link fed shuffled r: {shuffled:.2f} — {verdict}")

    def link_name(self) -> str:
        """``"linear link"``, ``"MLP link"`` or ``"linear link + 40 steps of feature inversion"``."""
        if isinstance(self.link, RefinedLink):
            return f"linear link + {self.link.steps} steps of feature inversion"
        return "MLP link" if isinstance(self.link, MLPLink) else "linear link"

    def metrics_html(self) -> str:
        """The summary over all held-out pairs (:meth:`LinkEvaluation.to_frame`) as an HTML table, after the class
        agreement set against its baselines (:meth:`agreement_text`)."""
        return (f"<b>Held-out cycle consistency</b> of the {html.escape(self.link_name())} over "
                f"{len(self.evaluation)} test pairs (w → G → classifier → r → link → w~ → G). "
                f"{html.escape(self.agreement_text())}:"
                f"{_html_table(self.evaluation.to_frame())}")

    def examples_frame(self, examples: list[int] | np.ndarray) -> pd.DataFrame:
        """Classes and per-example metrics of ``examples`` (see :attr:`LinkPageView.table`)."""
        index = list(examples)
        names = np.asarray(self.linked.class_names, dtype=object)
        frame = self.evaluation.per_example_frame().iloc[index]
        table = frame.assign(example=index, label=names[frame["labels"]],
                             original=names[frame["predicted_original"]], cycled=names[frame["predicted_cycled"]])
        label = ["label"] if self.evaluation.conditional else []  # an unconditional generator's pairs have none
        return table[["example", *label, "original", "cycled", *EXAMPLE_METRICS]].reset_index(drop=True)

    def compute(self, first: int) -> LinkPageView:
        """The page starting at example ``first`` (at most ``per_page`` examples).

        Raises
        ------
        IndexError
            If ``first`` is not an example.
        """
        first = int(first)
        if not 0 <= first < len(self.test_pairs):
            raise IndexError(f"example {first} out of range for {len(self.test_pairs)} test pairs")
        examples = tuple(range(first, min(first + self.per_page, len(self.test_pairs))))
        index = list(examples)
        images = self.linked.render(np.concatenate([self.test_pairs.w[index], self.evaluation.w_linked[index]]))
        zoom = max(1, TILE_PIXELS // images.shape[1])
        last = examples[-1]
        return LinkPageView(grid=tile_images(images, columns=len(examples), zoom=zoom, gap=1), rows=2,
                            columns=len(examples), row_labels=("original", "cycled"),
                            column_labels=tuple(f"example {i}" for i in examples),
                            title=f"held-out examples {first}–{last} of {len(self.test_pairs)}",
                            caption_html=_CAPTION, first=first, examples=examples,
                            table=self.examples_frame(index))
