"""WorldBrowser: look at a world's generated samples next to the ground truth they should show."""

from __future__ import annotations

import ipywidgets as ipw

from linkviz.controllers.world_browsing import WorldBrowsing, WorldSamplesView
from linkviz.widgets.base import ViewWidget
from linkviz.world import World

__all__ = ["WorldBrowser"]


class WorldBrowser(ViewWidget):
    """Generated samples of one class (top row) above the world's ground truth for them (bottom row).

    A thin view over :class:`linkviz.controllers.WorldBrowsing`: each change of class, truncation or seed asks it
    for a :class:`~linkviz.controllers.WorldSamplesView` and shows it as PNG, with the classifier's verdict on
    every sample. The bottom row (renders of the samples' factor records in the toy world) is shown for worlds
    that satisfy :class:`linkviz.GroundTruthWorld`.

    Parameters
    ----------
    world : World, optional
        The models to browse (default: :func:`linkviz.load_toy_world`).
    n_samples : int
        Samples per view.
    seed : int
        Initial seed of the latents.

    Attributes
    ----------
    samples : WorldSamplesView or None
        The samples on screen.
    summary : ipywidgets.HTML
        The caption under the image.
    """

    shown: WorldSamplesView | None

    def __init__(self, world: World | None = None, *, n_samples: int = 8, seed: int = 0) -> None:
        if world is None:
            import linkviz

            world = linkviz.load_toy_world()
        self.controller = WorldBrowsing(world, n_samples=n_samples)
        self.world, self.n_samples = world, n_samples
        names = list(self.controller.class_names)
        self.class_picker = ipw.Dropdown(options=names, value=names[0], description="class")
        self.truncation = ipw.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="psi",
                                          continuous_update=False)
        self.seed = ipw.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed")
        self._init_view(name="WorldBrowser", image_format="png")
        self.summary = self.label
        for control in (self.class_picker, self.truncation, self.seed):
            control.observe(self._on_change, names="value")
        super().__init__([ipw.HBox([self.class_picker, self.truncation, self.seed]), self.image, self.summary,
                          self.error, self._export_bar()])
        self.refresh()

    @property
    def samples(self) -> WorldSamplesView | None:
        return self.shown

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute the samples for the current controls and show them (one generator pass, here and now)."""
        try:
            view = self.controller.compute(self.class_picker.value, float(self.truncation.value),
                                           int(self.seed.value))
        except (ValueError, IndexError) as error:
            self._show_error(error)
            return
        self._show(view)
