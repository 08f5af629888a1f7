"""CounterfactualExplorer: find the shift of r that turns a base example into another class, and scrub along it."""

from __future__ import annotations

from collections.abc import Sequence

import ipywidgets as ipw

from linkviz.controllers.counterfactual_exploring import CounterfactualExploring, CounterfactualView
from linkviz.linking.linked_model import LinkedModel
from linkviz.widgets.base import ViewWidget

__all__ = ["CounterfactualExplorer"]


class CounterfactualExplorer(ViewWidget):
    """Pick an origin class, a target class and one of the origin's base examples; scrub along its counterfactual.

    A thin view over :class:`linkviz.controllers.CounterfactualExploring`: each change of origin, target,
    example, score or "keep realistic" asks it for a new search (:func:`linkviz.counterfactual.find_counterfactuals`
    and :func:`linkviz.counterfactual.refined_trajectory` along ``relu(r - alpha s)``) in a latest-wins worker.
    By default the search is constrained to the generator's realistic range (its latents' Mahalanobis distance,
    :class:`linkviz.counterfactual.LatentRealism` fitted on the base pairs) and succeeds only there; the status
    line says which search ran. Unticking "keep realistic" runs the unconstrained reference search, which on the
    toy world fools the classifier with blobs the generator was never trained to paint.
    The scrubber only re-shows what was computed (:meth:`~linkviz.controllers.CounterfactualView.at_step`): the
    image at that alpha next to the start (alpha = 0), the class probabilities, whether the image is still within
    the generator's realistic range, and the top shifted units with their change ``r' - r``. The path's points are
    packed where the class probabilities change (``spacing="refined"``), so the scrubber moves through the
    decision boundary gradually. The image is shown at its own pixel size, never stretched.

    Parameters
    ----------
    linked : LinkedModel
        The models and the link; examples of a class are the base pairs the classifier assigns to it.
    max_steps : int
        Optimisation steps before the search counts as failed (the reference used 2000).
    n_alphas : int
        Points along the trajectory, from alpha = 0 (the linked original) to 1 (the counterfactual).
    spacing : {"refined", "uniform"}
        Alphas packed where the class probabilities change (:func:`linkviz.counterfactual.refined_trajectory`),
        or evenly spaced.
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
    objective : {"image", "activations"}
        Initial score: classify the rendered counterfactual, or the head's logits at r'.
    constrained : bool
        Initial state of "keep realistic": search within the generator's realistic range (the default).
    confidence : float, optional
        Initial "stop when": None stops once the target is the top class (the decision boundary); a probability
        in (0, 1) goes on until the target's probability reaches it (a clearer, easier to see change).
    method : {"gradient", "minimal"}
        Initial search: gradient steps until the image is the target (the reference), or the smallest realistic
        change whose image is the target with the "stop when" probability (0.5 for "top class";
        :func:`linkviz.counterfactual.find_minimal_counterfactuals`, always realistic). On the toy world the
        smallest change to p(tree) ≥ 0.99 is what shows the planted sky shortcut.
    minimal_steps : int
        Steps of the smallest-change search.

    Attributes
    ----------
    search : CounterfactualView or None
        The last search that succeeded in computing (shown at the path's end when it arrives).
    """

    shown: CounterfactualView | None

    def __init__(self, linked: LinkedModel, *, max_steps: int = 500, n_alphas: int = 13, top_k: int = 5,
                 lr: float = 0.5, seed: int = 0, origin: int | None = None, target: int | None = None,
                 example: int = 0, objective: str = "image", spacing: str = "refined",
                 constrained: bool = True, confidence: float | None = None, method: str = "gradient",
                 minimal_steps: int = 100) -> None:
        self.controller = CounterfactualExploring(linked, max_steps=max_steps, n_alphas=n_alphas, top_k=top_k,
                                                  lr=lr, seed=seed, spacing=spacing, constrained=constrained,
                                                  minimal_steps=minimal_steps)
        self.linked = linked
        self.options, self.n_alphas, self.top_k = self.controller.options, n_alphas, self.controller.top_k
        origin = self.controller.default_classes()[0] if origin is None else int(origin)
        target = (origin + 1) % len(linked.class_names) if target is None else int(target)
        classes = [(name, k) for k, name in enumerate(linked.class_names)]
        self.origin = ipw.Dropdown(options=classes, value=origin, description="origin")
        self.target = ipw.Dropdown(options=classes, value=target, description="target")
        self.example = ipw.BoundedIntText(value=0, min=0, max=0, description="example")
        self.objective = ipw.ToggleButtons(
            options=[("rendered image", "image"), ("activations (reference)", "activations")], value=objective,
            description="score", style={"button_width": "auto"},
            tooltips=["classify the rendered counterfactual (robust)",
                      "the head's logits at r' (the Linking in Style reference)"])
        self.constrained = ipw.Checkbox(value=bool(constrained), description="keep realistic", indent=False,
                                        tooltip="keep the search within the generator's realistic latent range; "
                                                "a counterfactual counts only there")
        # 0.0 stands for "no probability asked" (a Dropdown shows the value None as no selection at all)
        confidences = [("target is the top class", 0.0), ("p(target) ≥ 0.9", 0.9), ("p(target) ≥ 0.99", 0.99)]
        if confidence and confidence not in dict(confidences).values():
            confidences.append((f"p(target) ≥ {confidence:g}", float(confidence)))
        self.confidence = ipw.Dropdown(options=confidences, value=float(confidence or 0.0), description="stop when",
                                       tooltip="stop at the decision boundary, or go on to a clear case of the "
                                               "target (a stronger, easier to see change)")
        self.method = ipw.ToggleButtons(
            options=[("steps to the target (reference)", "gradient"), ("smallest change", "minimal")],
            value=method, description="search", style={"button_width": "auto"},
            tooltips=["gradient steps until the image is the target (Linking in Style)",
                      "the closest realistic counterfactual in the generator's latent metric"])
        self.constrained.disabled = method == "minimal"  # the smallest-change search is always realistic
        self._set_example_range(origin)
        self.example.value = example
        self.scrubber = ipw.IntSlider(value=0, min=0, max=n_alphas - 1, description="alpha step")
        self._init_view(name="CounterfactualExplorer")
        # shown at its own size (set per view in _draw); a flex row would otherwise stretch it to its neighbours
        self.image.layout = ipw.Layout(object_fit="contain", flex="0 0 auto")
        self.status = self.label
        self.probabilities = ipw.HTML()
        self.units = ipw.HTML()
        self.search: CounterfactualView | None = None
        self._syncing_example = False  # main thread: origin change clamps the example
        self._syncing_scrubber = False  # worker thread: a new search moves the scrubber to its end
        self.origin.observe(self._on_origin, names="value")
        self.method.observe(self._on_method, names="value")
        for control in (self.origin, self.target, self.example, self.objective, self.constrained, self.confidence,
                        self.method):
            control.observe(self._on_change, names="value")
        self.scrubber.observe(self._on_scrub, names="value")
        super().__init__([ipw.HBox([self.origin, self.target, self.example]),
                          ipw.HBox([self.objective, self.constrained]), self.method, self.confidence,
                          self.status,
                          self.scrubber, ipw.HBox([self.image, self.probabilities, self.units],
                                                 layout=ipw.Layout(align_items="flex-start")), self.error,
                          self._export_bar()])
        try:
            self._show(self.controller.compute(origin, target, example, objective, bool(constrained), confidence,
                                               method))
        except (ValueError, IndexError) as error:
            self._show_error(error)

    # --- controls -> requests (main thread) ---

    def _set_example_range(self, origin: int) -> None:
        self.example.max = max(self.controller.n_examples(origin) - 1, 0)

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
        self._request(self.controller.compute, int(self.origin.value), int(self.target.value),
                      int(self.example.value), str(self.objective.value), bool(self.constrained.value),
                      self.confidence.value or None, str(self.method.value))

    def _on_method(self, change: dict) -> None:
        self.constrained.disabled = change["new"] == "minimal"

    def _on_scrub(self, change: dict) -> None:
        if not self._syncing_scrubber and self.search is not None:
            self._draw(self.search.at_step(int(change["new"])))

    # --- results -> traits ---

    def _show(self, view: CounterfactualView) -> None:
        """A new search (worker thread): keep it, move the scrubber to its end without redrawing, show it."""
        self.search = view
        self._syncing_scrubber = True
        try:
            self.scrubber.max = len(view.alphas) - 1
            self.scrubber.value = view.step
        finally:
            self._syncing_scrubber = False
        self._draw(view)

    def _draw(self, view: CounterfactualView) -> None:
        super()._show(view)
        height, width = view.grid.shape[:2]
        self.image.layout.width, self.image.layout.height = f"{width}px", f"{height}px"
        self.probabilities.value = view.probabilities_html
        self.units.value = view.units_html

    def _show_error(self, error: Exception) -> None:
        super()._show_error(error)
        self.status.value = "<i>no new counterfactual; showing the last one</i>" if self.search else ""

    def _snapshot_parts(self) -> Sequence[str]:
        return (self.status.value, self.probabilities.value, self.units.value, self.error.value)
