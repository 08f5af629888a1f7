"""CounterfactualExplorer: find the shift of r that turns a base example into another class, and scrub along it."""

from __future__ import annotations

import html
from dataclasses import dataclass
from functools import partial

import ipywidgets as ipw
import numpy as np
from linkviz.widgets.latest_wins import LatestWinsWorker, error_html
from linkviz.widgets.snapshot import with_snapshot

from linkviz.counterfactual.optimise import CounterfactualResult, find_counterfactuals
from linkviz.counterfactual.trajectory import Trajectory, counterfactual_trajectory, top_shifted_units
from linkviz.linking.linked_model import LinkedModel
from linkviz.plotting.images import encode_image, tile_images

__all__ = ["CounterfactualExplorer"]

_TILE_PIXELS = 160
_BAR_PIXELS = 160


@dataclass(frozen=True, eq=False)
class _Search:
    origin: int
    target: int
    example: int
    row: int
    result: CounterfactualResult
    trajectory: Trajectory
    top_units: np.ndarray


class CounterfactualExplorer(ipw.VBox):
    """Pick an origin class, a target class and one of the origin's base examples; scrub along its counterfactual.

    Each change of origin, target or example runs :func:`linkviz.counterfactual.find_counterfactuals` for that one
    example and :func:`linkviz.counterfactual.counterfactual_trajectory` along ``relu(r - alpha s)``, in a
    :class:`LatestWinsWorker`. The scrubber only re-shows what was computed: the image at that alpha next to
    the start (alpha = 0), the class probabilities and the top shifted units.

    Parameters
    ----------
    linked : LinkedModel
        The models and the link; examples of a class are the base pairs the classifier assigns to it.
    max_steps : int
        Optimisation steps before the search counts as failed (the reference used 2000).
    n_alphas : int
        Points along the trajectory, from alpha = 0 (the linked original) to 1 (the counterfactual).
    top_k : int
        Shifted units listed.
    lr : float
        Step size of the optimisation.
    seed : int
        Seed of the initial shift.
    origin, target : int, optional
        Initial classes; default the class with most base examples and the class after it.
    example : int
        Initial example among the origin's.
    """

    def __init__(self, linked: LinkedModel, *, max_steps: int = 500, n_alphas: int = 9, top_k: int = 5,
                 lr: float = 0.5, seed: int = 0, origin: int | None = None, target: int | None = None,
                 example: int = 0, objective: str = "image") -> None:
        if n_alphas < 2:
            raise ValueError(f"n_alphas must be at least 2, got {n_alphas}")
        self.linked = linked
        self.options = {"max_steps": max_steps, "lr": lr, "seed": seed}
        self.alphas = np.linspace(0.0, 1.0, n_alphas)
        self.top_k = min(top_k, linked.link.r_dim)
        n_classes = len(linked.class_names)
        counts = np.bincount(linked.pairs.predicted, minlength=n_classes)[:n_classes]
        origin = int(np.argmax(counts)) if origin is None else int(origin)
        target = (origin + 1) % n_classes if target is None else int(target)
        classes = [(name, k) for k, name in enumerate(linked.class_names)]
        self.origin = ipw.Dropdown(options=classes, value=origin, description="origin")
        self.target = ipw.Dropdown(options=classes, value=target, description="target")
        self.example = ipw.BoundedIntText(value=0, min=0, max=0, description="example")
        self.objective = ipw.ToggleButtons(
            options=[("rendered image", "image"), ("activations (reference)", "activations")], value=objective,
            description="score", tooltips=["classify the rendered counterfactual (robust)",
                                           "the head's logits at r' (the Linking in Style reference)"])
        self._set_example_range(origin)
        self.example.value = example
        self.scrubber = ipw.IntSlider(value=0, min=0, max=n_alphas - 1, description="alpha step")
        self.image = ipw.Image(format="jpeg")
        self.status = ipw.HTML()
        self.probabilities = ipw.HTML()
        self.units = ipw.HTML()
        self.error = ipw.HTML()
        self.search: _Search | None = None
        self._syncing_example = False  # main thread: origin change clamps the example
        self._syncing_scrubber = False  # worker thread: a new search moves the scrubber to its end
        self.worker = LatestWinsWorker(self._show_search, self._show_error, name="CounterfactualExplorer")
        self.origin.observe(self._on_origin, names="value")
        for control in (self.origin, self.target, self.example, self.objective):
            control.observe(self._on_change, names="value")
        self.scrubber.observe(self._on_scrub, names="value")
        super().__init__([ipw.HBox([self.origin, self.target, self.example]), self.objective, self.status,
                          self.scrubber,
                          ipw.HBox([self.image, self.probabilities, self.units]), self.error])
        try:
            self._show_search(self._compute(origin, target, example, objective))
        except (ValueError, IndexError) as error:
            self._show_error(error)

    # --- controls -> requests (main thread) ---

    def _set_example_range(self, origin: int) -> None:
        count = len(self.linked.examples_of_class(origin))
        self.example.max = max(count - 1, 0)

    def _on_origin(self, change: dict) -> None:
        self._syncing_example = True
        try:
            self._set_example_range(change["new"])
        finally:
            self._syncing_example = False

    def _on_change(self, change: dict) -> None:
        if self._syncing_example:
            return
        self.status.value = "<i>searching…</i>"
        self.worker.submit(partial(self._compute, int(self.origin.value), int(self.target.value),
                                   int(self.example.value), str(self.objective.value)))

    def _on_scrub(self, change: dict) -> None:
        if not self._syncing_scrubber:
            self._show_step()

    # --- compute (worker thread) ---

    def _compute(self, origin: int, target: int, example: int, objective: str = "image") -> _Search:
        rows = self.linked.examples_of_class(origin)
        if not 0 <= example < len(rows):
            raise IndexError(f"example {example} out of range: {len(rows)} base examples are classified as "
                             f"{self.linked.class_names[origin]!r}")
        row = int(rows[example])
        r = self.linked.pairs.r[row][None]
        link, generator, classifier = self.linked.link, self.linked.generator, self.linked.classifier
        result = find_counterfactuals(link, generator, classifier, r, origin=origin, target=target,
                                      device=self.linked.device, progress=False, objective=objective,
                                      **self.options)
        trajectory = counterfactual_trajectory(link, generator, classifier, r, result.shift, alphas=self.alphas,
                                               device=self.linked.device)
        return _Search(origin, target, example, row, result, trajectory,
                       top_shifted_units(result.shift, self.top_k)[0])

    # --- results -> traits ---

    def _show_search(self, search: _Search) -> None:
        self.search = search
        names = self.linked.class_names
        result = search.result
        outcome = (f"reached <b>{html.escape(names[search.target])}</b> in {int(result.steps[0])} steps"
                   if result.success[0] else
                   f"did <b>not</b> reach {html.escape(names[search.target])} in {int(result.steps[0])} steps "
                   f"(showing the path anyway)")
        self.status.value = (f"Base example {search.row} ({html.escape(names[search.origin])} #{search.example}): "
                             f"{outcome}.")
        self.error.value = ""
        self._syncing_scrubber = True
        try:
            self.scrubber.value = len(self.alphas) - 1
        finally:
            self._syncing_scrubber = False
        self._show_step()

    def _show_step(self) -> None:
        search = self.search
        if search is None:
            return
        step = int(self.scrubber.value)
        images = search.trajectory.images[0]
        zoom = max(1, _TILE_PIXELS // images.shape[1])
        self.image.value = encode_image(tile_images(images[[0, step]], columns=2, zoom=zoom, gap=1), format="jpeg")
        self.probabilities.value = self._probabilities_html(search, step)
        self.units.value = self._units_html(search, step)

    def _probabilities_html(self, search: _Search, step: int) -> str:
        probabilities = search.trajectory.probabilities[0, step]
        lines = [f"alpha = {self.alphas[step]:.2f} (left: alpha = 0)"]
        for k, (name, p) in enumerate(zip(self.linked.class_names, probabilities)):
            colour = "#1b7837" if k == search.target else "#b2182b" if k == search.origin else "#888"
            weight = "bold" if k == int(np.argmax(probabilities)) else "normal"
            lines.append(f'<div style="font-weight:{weight}"><span style="display:inline-block;width:7em">'
                         f'{html.escape(name)}</span><span style="display:inline-block;background:{colour};'
                         f'width:{p * _BAR_PIXELS:.0f}px;height:0.8em"></span> {p:.3f}</div>')
        return "".join(lines)

    def _units_html(self, search: _Search, step: int) -> str:
        shift, r = search.result.shift[0], search.trajectory.r[0]
        rows = "".join(f"<tr><td>{u}</td><td>{shift[u]:+.3g}</td><td>{r[0, u]:.3g}</td><td>{r[step, u]:.3g}</td>"
                       f"</tr>" for u in search.top_units)
        return ("<b>top shifted units</b><table><tr><th>unit</th><th>shift s</th><th>r at 0</th>"
                f"<th>r here</th></tr>{rows}</table>")

    def _show_error(self, error: Exception) -> None:
        self.error.value = error_html(error)
        self.status.value = "<i>no new counterfactual; showing the last one</i>" if self.search else ""

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot (image, status, probabilities and units)."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.status.value,
                             self.probabilities.value, self.units.value, self.error.value)
