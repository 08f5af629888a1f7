"""CounterfactualExploring: the shift of r that turns one base example into another class, and the path along it."""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import TYPE_CHECKING, Literal

import numpy as np
import pandas as pd

from linkviz.controllers.view import GridView
from linkviz.counterfactual.minimal import find_minimal_counterfactuals
from linkviz.counterfactual.optimise import CounterfactualResult, find_counterfactuals
from linkviz.counterfactual.realism import LatentRealism, fit_latent_realism
from linkviz.counterfactual.trajectory import (
    Trajectory,
    counterfactual_trajectory,
    refined_trajectory,
    top_shifted_units,
)
from linkviz.figures.counterfactual import counterfactual_figure
from linkviz.images import tile_images
from linkviz.linking.linked_model import LinkedModel

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = ["CounterfactualExploring", "CounterfactualView"]

TILE_PIXELS = 160
BAR_PIXELS = 160
Objective = Literal["image", "activations"]
Spacing = Literal["refined", "uniform"]
Search = Literal["gradient", "minimal"]
OFF_COLOUR = "#b2182b"


def _count(n: int, noun: str) -> str:
    """``"1 step"``, ``"2 steps"``."""
    return f"{n} {noun}" if n == 1 else f"{n} {noun}s"


@dataclass(frozen=True, eq=False, kw_only=True)
class CounterfactualView(GridView):
    """One counterfactual search and one point of its path: the start (alpha = 0) beside the image at ``step``.

    :meth:`at_step` gives the same search at another point of the path without computing anything.

    Attributes
    ----------
    origin, target : int
        The classes.
    example : int
        Index among the base examples of the origin class.
    row : int
        The base pair searched (row of ``linked.pairs``).
    objective : {"image", "activations"}
    class_names : tuple of str
    result : CounterfactualResult
        The search, for the one example.
    trajectory : Trajectory
        The path ``relu(r - alpha s)`` at ``trajectory.alphas``, rendered and classified.
    top_units : ndarray of int, shape (k,)
        The units with the largest ``|s|``, largest first.
    step : int
        The point of the path shown (index into ``trajectory.alphas``).
    latent_distance : ndarray of float, shape (A,)
        Mahalanobis distance of each point's linked latent from the generator's latents
        (:class:`linkviz.counterfactual.LatentRealism`).
    realism_threshold : float
        Distances above it leave the generator's realistic range (a high quantile of held-out base latents).
    realism_quantile : float
        That quantile.
    constrained : bool
        Whether the search was kept realistic (``find_counterfactuals(..., realism=...)``): success then needs
        the image to be the target class *and* its latent within the threshold.
    """

    origin: int
    target: int
    example: int
    row: int
    objective: str
    class_names: tuple[str, ...]
    result: CounterfactualResult
    trajectory: Trajectory
    top_units: np.ndarray
    step: int
    latent_distance: np.ndarray
    realism_threshold: float
    realism_quantile: float
    constrained: bool = True

    @property
    def alphas(self) -> np.ndarray:
        return self.trajectory.alphas

    @property
    def off_manifold(self) -> np.ndarray:
        """Points of the path whose latent left the generator's realistic range, bool of shape (A,)."""
        return self.latent_distance > self.realism_threshold

    @property
    def realism_html(self) -> str:
        """Whether the image at :attr:`step` is within the generator's realistic range, and by how much."""
        distance = self.latent_distance[self.step]
        if self.off_manifold[self.step]:
            return (f'<div style="color:{OFF_COLOUR}"><b>⚠ off the generator\'s range</b>: latent distance '
                    f"{distance:.1f} &gt; {self.realism_threshold:.1f}; the classifier's verdict on this image "
                    "says little about real ones</div>")
        return (f"<div>within the generator's range: latent distance {distance:.1f} ≤ "
                f"{self.realism_threshold:.1f}</div>")

    @property
    def success(self) -> bool:
        return bool(self.result.success[0])

    @property
    def probabilities_html(self) -> str:
        """Bars of the class probabilities at :attr:`step` (target green, origin red, the winner in bold)."""
        probabilities = self.trajectory.probabilities[0, self.step]
        lines = [f"alpha = {self.alphas[self.step]:.2f} (left: alpha = 0)", self.realism_html]
        winner = int(np.argmax(probabilities))
        for k, (name, p) in enumerate(zip(self.class_names, probabilities)):
            colour = "#1b7837" if k == self.target else "#b2182b" if k == self.origin else "#888"
            weight = "bold" if k == winner else "normal"
            lines.append(f'<div style="font-weight:{weight}"><span style="display:inline-block;width:7em">'
                         f'{html.escape(name)}</span><span style="display:inline-block;background:{colour};'
                         f'width:{p * BAR_PIXELS:.0f}px;height:0.8em"></span> {p:.3f}</div>')
        return "".join(lines)

    @property
    def units_html(self) -> str:
        """The top shifted units: r at the start, r' at :attr:`step` and the change ``r' - r`` (signed)."""
        r, alpha = self.trajectory.r[0], self.alphas[self.step]
        rows = "".join(f"<tr><td>{u}</td><td>{r[0, u]:.3g}</td><td>{r[self.step, u]:.3g}</td>"
                       f"<td>{r[self.step, u] - r[0, u]:+.3g}</td></tr>" for u in self.top_units)
        return ("<b>top shifted units</b><table><tr><th>unit</th><th>r (alpha = 0)</th>"
                f"<th>r' (alpha = {alpha:.2f})</th><th>change r' − r</th></tr>{rows}</table>"
                "<small>r' = relu(r − alpha·s): the search subtracts its shift s, so a unit with s &gt; 0 falls "
                "(negative change); units ranked by |s|</small>")

    def at_step(self, step: int) -> CounterfactualView:
        """The same search showing the path at ``step`` (IndexError outside ``0 .. len(alphas) - 1``)."""
        step = int(step)
        if not 0 <= step < len(self.alphas):
            raise IndexError(f"step {step} out of range for {len(self.alphas)} points of the path")
        images = self.trajectory.images[0]
        zoom = max(1, TILE_PIXELS // images.shape[1])
        off = " (off the generator's range)" if self.off_manifold[step] else ""
        return dataclasses.replace(self, step=step, grid=tile_images(images[[0, step]], columns=2, zoom=zoom, gap=1),
                                   column_labels=("alpha = 0", f"alpha = {self.alphas[step]:.2f}"),
                                   title=f"{self.class_names[self.origin]} → {self.class_names[self.target]}, "
                                         f"base example {self.row}, alpha = {self.alphas[step]:.2f}{off}")

    def to_frame(self) -> pd.DataFrame:
        """One row per point of the path and quantity: each class probability and each top unit's r'.

        Columns ``row, origin, target, success, constrained, step, alpha, latent_distance, off_manifold,
        quantity, name, value, change, shift``: ``quantity`` is ``"probability"`` (``name`` a class) or ``"activation"``
        (``name`` a unit, ``value`` its ``r' = relu(r - alpha s)``, ``change`` its ``r' - r``, ``shift`` its
        ``s``, which is subtracted: ``s > 0`` lowers the unit). ``off_manifold`` flags the points whose
        ``latent_distance`` exceeds :attr:`realism_threshold`.
        """
        common = {"row": self.row, "origin": self.class_names[self.origin],
                  "target": self.class_names[self.target], "success": self.success, "constrained": self.constrained}
        shift, r, probabilities = self.result.shift[0], self.trajectory.r[0], self.trajectory.probabilities[0]
        records = []
        for step, alpha in enumerate(self.alphas):
            point = {**common, "step": step, "alpha": float(alpha),
                     "latent_distance": float(self.latent_distance[step]),
                     "off_manifold": bool(self.off_manifold[step])}
            records += [{**point, "quantity": "probability", "name": name, "value": float(probabilities[step, k]),
                         "change": np.nan, "shift": np.nan} for k, name in enumerate(self.class_names)]
            records += [{**point, "quantity": "activation", "name": str(u), "value": float(r[step, u]),
                         "change": float(r[step, u] - r[0, u]), "shift": float(shift[u])} for u in self.top_units]
        return pd.DataFrame(records)

    def figure(self, *, width_inches: float = 7.0) -> Figure:
        """The paper's counterfactual figure of this view (:func:`linkviz.figures.counterfactual_figure`): the
        start and the image at :attr:`step`, beside the class probabilities along the whole path."""
        return counterfactual_figure(self.trajectory, examples=(0,), steps=(0, self.step), origin=self.origin,
                                     target=self.target, row_labels=self.row_labels,
                                     column_labels=self.column_labels, title=self.title, width=width_inches)


class CounterfactualExploring:
    """The state behind :class:`linkviz.widgets.CounterfactualExplorer`: one counterfactual search per request.

    :meth:`compute` runs :func:`linkviz.counterfactual.find_counterfactuals` for one base example of the origin
    class, by default kept realistic (``realism=``: the search stays within the generator's latent range and
    succeeds only there); :meth:`path` renders and classifies ``relu(r - alpha s)`` (by default at alphas packed
    where the class probabilities change, :func:`linkviz.counterfactual.refined_trajectory`) and scores each
    point's latent against the generator's own (:func:`linkviz.counterfactual.fit_latent_realism` on ``linked.pairs.w``).

    Parameters
    ----------
    linked : LinkedModel
        The models and the link; examples of a class are the base pairs the classifier assigns to it.
    max_steps : int
        Optimisation steps before the search counts as failed.
    n_alphas : int
        Points along the path, from alpha = 0 (the linked original) to 1 (the counterfactual).
    top_k : int
        Shifted units listed.
    lr : float
        Step size of the optimisation.
    seed : int
        Seed of the initial shift (and of the realism model's folds).
    spacing : {"refined", "uniform"}
        Alphas packed where the class probabilities change, or evenly spaced.
    realism_quantile : float
        Quantile of held-out base latents' distances beyond which a point is off the generator's range.
    realism : LatentRealism, optional
        The generator's latent distribution; default fitted on ``linked.pairs.w`` with ``realism_quantile``.
    constrained : bool
        Default of :meth:`compute`: keep the search realistic (True) or search as the reference (False).
    minimal_steps : int
        Steps of the smallest-change search (:func:`linkviz.counterfactual.find_minimal_counterfactuals`).

    Attributes
    ----------
    realism : LatentRealism
        The generator's latent distribution, fitted on the base pairs' ``w``.
    """

    def __init__(self, linked: LinkedModel, *, max_steps: int = 500, n_alphas: int = 13, top_k: int = 5,
                 lr: float = 0.5, seed: int = 0, spacing: Spacing = "refined", realism_quantile: float = 0.99,
                 realism: LatentRealism | None = None, constrained: bool = True, minimal_steps: int = 100) -> None:
        if n_alphas < 2:
            raise ValueError(f"n_alphas must be at least 2, got {n_alphas}")
        if spacing not in ("refined", "uniform"):
            raise ValueError(f"spacing must be 'refined' or 'uniform'; got {spacing!r}")
        self.linked = linked
        self.options = {"max_steps": max_steps, "lr": lr, "seed": seed}
        self.n_alphas, self.spacing = int(n_alphas), spacing
        self.top_k = min(top_k, linked.link.r_dim)
        self.class_names = tuple(linked.class_names)
        self.realism: LatentRealism = (fit_latent_realism(linked.pairs.w, quantile=realism_quantile, seed=seed)
                                       if realism is None else realism)
        self.constrained = bool(constrained)
        self.minimal_steps = int(minimal_steps)

    def default_classes(self) -> tuple[int, int]:
        """The class with most base examples and the class after it."""
        n_classes = len(self.class_names)
        counts = np.bincount(self.linked.pairs.predicted, minlength=n_classes)[:n_classes]
        origin = int(np.argmax(counts))
        return origin, (origin + 1) % n_classes

    def n_examples(self, origin: int) -> int:
        """Base examples the classifier assigns to ``origin``."""
        return len(self.linked.examples_of_class(origin))

    def _row(self, origin: int, example: int) -> int:
        rows = self.linked.examples_of_class(origin)
        if not 0 <= example < len(rows):
            raise IndexError(f"example {example} out of range: {len(rows)} base examples are classified as "
                             f"{self.class_names[origin]!r}")
        return int(rows[example])

    def compute(self, origin: int, target: int, example: int, objective: Objective = "image",
                constrained: bool | None = None, confidence: float | None = None, search: Search = "gradient"
                ) -> CounterfactualView:
        """Search the counterfactual of the origin's ``example``-th base example; the view at the path's end.

        ``search="gradient"`` steps along the gradient until the image is the target (the reference,
        :func:`find_counterfactuals`): ``constrained`` (default: the controller's) keeps it within the generator's
        realistic range, and ``confidence`` in ``(0, 1)`` goes on until the target's probability reaches it (a
        clear case of the target rather than the decision boundary); None stops as soon as the target is the top
        class. ``search="minimal"`` finds the smallest realistic change whose image is the target with probability
        ``confidence`` (None: 0.5) (:func:`find_minimal_counterfactuals`; always realistic, ``constrained`` is
        ignored): on the toy world it is the one that shows the planted sky shortcut.

        Raises
        ------
        IndexError
            If the origin has no ``example``-th base example.
        ValueError
            If the target equals the origin (from :func:`find_counterfactuals`).
        """
        origin, target, example = int(origin), int(target), int(example)
        constrained = self.constrained if constrained is None else bool(constrained)
        r = self.linked.pairs.r[self._row(origin, example)][None]
        models = (self.linked.link, self.linked.generator, self.linked.classifier, r)
        if search == "minimal":
            result = find_minimal_counterfactuals(*models, origin=origin, target=target, realism=self.realism,
                                                  target_probability=0.5 if confidence is None else confidence,
                                                  steps=self.minimal_steps, objective=objective,
                                                  device=self.linked.device, progress=False)
        elif search == "gradient":
            result = find_counterfactuals(*models, origin=origin, target=target, device=self.linked.device,
                                          progress=False, objective=objective,
                                          realism=self.realism if constrained else None,
                                          target_probability=confidence, **self.options)
        else:
            raise ValueError(f"search must be 'gradient' or 'minimal'; got {search!r}")
        return self.path(origin, target, example, result, objective=objective, confidence=confidence, search=search)

    def path(self, origin: int, target: int, example: int, result: CounterfactualResult, *,
             objective: Objective = "image", confidence: float | None = None, search: Search = "gradient"
             ) -> CounterfactualView:
        """The view of a shift of the origin's ``example``-th base example: its path, at the path's end.

        Parameters
        ----------
        origin, target, example : int
        result : CounterfactualResult
            One example's search (``result.shift`` of shape (1, D)), e.g. from :meth:`compute` or made by hand.
        objective : {"image", "activations"}
            The score the search used (shown, not used).
        confidence : float, optional
            The target probability the search went on to (shown in the status line).
        search : {"gradient", "minimal"}
            Which search made ``result`` (shown in the status line).

        The search counts as constrained when ``result`` records latent distances (a search with ``realism``).
        """
        origin, target, example = int(origin), int(target), int(example)
        row = self._row(origin, example)
        r = self.linked.pairs.r[row][None]
        link, generator, classifier = self.linked.link, self.linked.generator, self.linked.classifier
        if self.spacing == "refined":
            trajectory = refined_trajectory(link, generator, classifier, r, result.shift, n_alphas=self.n_alphas,
                                            realism=self.realism, device=self.linked.device)
        else:
            trajectory = counterfactual_trajectory(link, generator, classifier, r, result.shift,
                                                   alphas=np.linspace(0.0, 1.0, self.n_alphas),
                                                   realism=self.realism, device=self.linked.device)
        distance = trajectory.latent_distance[0]
        constrained = result.latent_distance is not None
        view = CounterfactualView(grid=np.zeros((1, 1, 3), np.uint8), rows=1, columns=2, origin=origin,
                                  row_labels=(f"base example {row}",),
                                  target=target, example=example, row=row, objective=str(objective),
                                  class_names=self.class_names, result=result, trajectory=trajectory,
                                  top_units=top_shifted_units(result.shift, self.top_k)[0], step=0,
                                  latent_distance=distance, realism_threshold=self.realism.threshold,
                                  realism_quantile=self.realism.quantile, constrained=constrained,
                                  caption_html=self._status(origin, target, example, row, result, confidence, search)
                                  + " " + self._realism_status(trajectory.alphas, distance, constrained, search))
        return view.at_step(len(trajectory.alphas) - 1)

    def _status(self, origin: int, target: int, example: int, row: int, result: CounterfactualResult,
                confidence: float | None = None, search: Search = "gradient") -> str:
        names = self.class_names
        steps = (f"{self.minimal_steps} steps (the smallest change found at step {int(result.steps[0])})"
                 if search == "minimal" and result.success[0] else _count(int(result.steps[0]), "step"))
        realistic = ", within the generator's realistic range" if result.latent_distance is not None else ""
        clearly = "" if confidence is None else f" with p ≥ {confidence:g}"
        if result.success[0]:
            outcome = f"reached <b>{html.escape(names[target])}</b>{clearly} in {steps}{realistic}"
        elif result.reached_target[0] and confidence is not None and (result.realistic is None
                                                                       or result.realistic[0]):
            outcome = (f"made {html.escape(names[target])} the top class but not with p ≥ {confidence:g} in "
                       f"{steps} (p = {float(result.target_probability[0]):.2f}; showing the path anyway)")
        elif result.reached_target[0]:
            outcome = (f"reached {html.escape(names[target])} only off the generator's range in {steps}: "
                       "<b>no</b> realistic counterfactual (showing the path anyway)")
        else:
            outcome = f"did <b>not</b> reach {html.escape(names[target])} in {steps} (showing the path anyway)"
        return f"Base example {row} ({html.escape(names[origin])} #{example}): {outcome}."

    def _realism_status(self, alphas: np.ndarray, distance: np.ndarray, constrained: bool,
                        search: Search = "gradient") -> str:
        """How the search was kept realistic, and which points of the path left the generator's realistic range."""
        threshold, quantile = self.realism.threshold, self.realism.quantile
        rule = (f"latent Mahalanobis distance &gt; {threshold:.1f}, the {100 * quantile:g}th percentile of "
                "held-out base latents")
        if search == "minimal":
            how = ("Smallest-change search: the closest counterfactual in the generator's latent metric, a "
                   "success only within its realistic range. ")
        elif constrained:
            how = "Constrained search: kept within the generator's realistic range, and a success only there. "
        else:
            how = "Unconstrained search (the reference): free to leave the generator's range. "
        off = distance > threshold
        if not off.any():
            return (f"{how}The whole path stays within the generator's realistic range "
                    f"({rule.replace('&gt;', '≤')}).")
        first = int(np.argmax(off))
        where = (f"from alpha = {alphas[first]:.2f} on" if off[first:].all() else
                 "at alpha = " + ", ".join(f"{alpha:.2f}" for alpha in alphas[off]))
        return (f'{how}<span style="color:{OFF_COLOUR}">⚠ {_count(int(off.sum()), "point")} of {len(alphas)} '
                f"{where} left the generator's realistic range</span> ({rule}): there the classifier judges "
                "images unlike any the generator makes.")
