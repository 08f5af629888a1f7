"""CounterfactualExploring: the shift of r that turns one base example into another class, and the path along it."""

from __future__ import annotations

import dataclasses
import html
from dataclasses import dataclass
from typing import Literal

import numpy as np
import pandas as pd

from linkviz.controllers.view import GridView
from linkviz.counterfactual.optimise import CounterfactualResult, find_counterfactuals
from linkviz.counterfactual.trajectory import Trajectory, counterfactual_trajectory, top_shifted_units
from linkviz.images import tile_images
from linkviz.linking.linked_model import LinkedModel

__all__ = ["CounterfactualExploring", "CounterfactualView"]

TILE_PIXELS = 160
BAR_PIXELS = 160
Objective = Literal["image", "activations"]


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

    @property
    def alphas(self) -> np.ndarray:
        return self.trajectory.alphas

    @property
    def success(self) -> bool:
        return bool(self.result.success[0])

    @property
    def probabilities_html(self) -> str:
        """Bars of the class probabilities at :attr:`step` (target green, origin red, the winner in bold)."""
        probabilities = self.trajectory.probabilities[0, self.step]
        lines = [f"alpha = {self.alphas[self.step]:.2f} (left: alpha = 0)"]
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
        """The top shifted units: shift, r at the start and r at :attr:`step`."""
        shift, r = self.result.shift[0], self.trajectory.r[0]
        rows = "".join(f"<tr><td>{u}</td><td>{shift[u]:+.3g}</td><td>{r[0, u]:.3g}</td>"
                       f"<td>{r[self.step, u]:.3g}</td></tr>" for u in self.top_units)
        return ("<b>top shifted units</b><table><tr><th>unit</th><th>shift s</th><th>r at 0</th>"
                f"<th>r here</th></tr>{rows}</table>")

    def at_step(self, step: int) -> CounterfactualView:
        """The same search showing the path at ``step`` (IndexError outside ``0 .. len(alphas) - 1``)."""
        step = int(step)
        if not 0 <= step < len(self.alphas):
            raise IndexError(f"step {step} out of range for {len(self.alphas)} points of the path")
        images = self.trajectory.images[0]
        zoom = max(1, TILE_PIXELS // images.shape[1])
        return dataclasses.replace(self, step=step, grid=tile_images(images[[0, step]], columns=2, zoom=zoom, gap=1),
                                   column_labels=("alpha = 0", f"alpha = {self.alphas[step]:.2f}"),
                                   title=f"{self.class_names[self.origin]} → {self.class_names[self.target]}, "
                                         f"base example {self.row}, alpha = {self.alphas[step]:.2f}")

    def to_frame(self) -> pd.DataFrame:
        """One row per point of the path and quantity: each class probability and each top unit's r.

        Columns ``row, origin, target, success, step, alpha, quantity, name, value, shift``: ``quantity`` is
        ``"probability"`` (``name`` a class) or ``"activation"`` (``name`` a unit, ``shift`` its ``s``).
        """
        common = {"row": self.row, "origin": self.class_names[self.origin],
                  "target": self.class_names[self.target], "success": self.success}
        shift, r, probabilities = self.result.shift[0], self.trajectory.r[0], self.trajectory.probabilities[0]
        records = []
        for step, alpha in enumerate(self.alphas):
            records += [{**common, "step": step, "alpha": float(alpha), "quantity": "probability", "name": name,
                         "value": float(probabilities[step, k]), "shift": np.nan}
                        for k, name in enumerate(self.class_names)]
            records += [{**common, "step": step, "alpha": float(alpha), "quantity": "activation", "name": str(u),
                         "value": float(r[step, u]), "shift": float(shift[u])} for u in self.top_units]
        return pd.DataFrame(records)


class CounterfactualExploring:
    """The state behind :class:`linkviz.widgets.CounterfactualExplorer`: one counterfactual search per request.

    :meth:`compute` runs :func:`linkviz.counterfactual.find_counterfactuals` for one base example of the origin
    class and :func:`linkviz.counterfactual.counterfactual_trajectory` along ``relu(r - alpha s)``.

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
        Seed of the initial shift.
    """

    def __init__(self, linked: LinkedModel, *, max_steps: int = 500, n_alphas: int = 9, top_k: int = 5,
                 lr: float = 0.5, seed: int = 0) -> None:
        if n_alphas < 2:
            raise ValueError(f"n_alphas must be at least 2, got {n_alphas}")
        self.linked = linked
        self.options = {"max_steps": max_steps, "lr": lr, "seed": seed}
        self.alphas = np.linspace(0.0, 1.0, n_alphas)
        self.top_k = min(top_k, linked.link.r_dim)
        self.class_names = tuple(linked.class_names)

    def default_classes(self) -> tuple[int, int]:
        """The class with most base examples and the class after it."""
        n_classes = len(self.class_names)
        counts = np.bincount(self.linked.pairs.predicted, minlength=n_classes)[:n_classes]
        origin = int(np.argmax(counts))
        return origin, (origin + 1) % n_classes

    def n_examples(self, origin: int) -> int:
        """Base examples the classifier assigns to ``origin``."""
        return len(self.linked.examples_of_class(origin))

    def compute(self, origin: int, target: int, example: int, objective: Objective = "image") -> CounterfactualView:
        """Search the counterfactual of the origin's ``example``-th base example; the view at the path's end.

        Raises
        ------
        IndexError
            If the origin has no ``example``-th base example.
        ValueError
            If the target equals the origin (from :func:`find_counterfactuals`).
        """
        origin, target, example = int(origin), int(target), int(example)
        rows = self.linked.examples_of_class(origin)
        if not 0 <= example < len(rows):
            raise IndexError(f"example {example} out of range: {len(rows)} base examples are classified as "
                             f"{self.class_names[origin]!r}")
        row = int(rows[example])
        r = self.linked.pairs.r[row][None]
        link, generator, classifier = self.linked.link, self.linked.generator, self.linked.classifier
        result = find_counterfactuals(link, generator, classifier, r, origin=origin, target=target,
                                      device=self.linked.device, progress=False, objective=objective,
                                      **self.options)
        trajectory = counterfactual_trajectory(link, generator, classifier, r, result.shift, alphas=self.alphas,
                                               device=self.linked.device)
        view = CounterfactualView(grid=np.zeros((1, 1, 3), np.uint8), rows=1, columns=2, origin=origin,
                                  row_labels=(f"base example {row}",),
                                  target=target, example=example, row=row, objective=str(objective),
                                  class_names=self.class_names, result=result, trajectory=trajectory,
                                  top_units=top_shifted_units(result.shift, self.top_k)[0], step=0,
                                  caption_html=self._status(origin, target, example, row, result))
        return view.at_step(len(self.alphas) - 1)

    def _status(self, origin: int, target: int, example: int, row: int, result: CounterfactualResult) -> str:
        names = self.class_names
        steps = int(result.steps[0])
        outcome = (f"reached <b>{html.escape(names[target])}</b> in {steps} steps" if result.success[0] else
                   f"did <b>not</b> reach {html.escape(names[target])} in {steps} steps (showing the path anyway)")
        return f"Base example {row} ({html.escape(names[origin])} #{example}): {outcome}."
