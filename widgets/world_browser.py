"""WorldBrowser: look at the toy world's generated samples next to the ground truth they should show."""

from __future__ import annotations

import html

import ipywidgets as ipw
import numpy as np
from linkviz.widgets.snapshot import with_snapshot

from linkviz.plotting.images import encode_image, tile_images
from linkviz.toyworld.evaluation import ClassSamples, class_samples
from linkviz.toyworld.factors import CLASS_NAMES
from linkviz.toyworld.world import ToyWorld, load_toy_world


class WorldBrowser(ipw.VBox):
    """Generated samples of one class (top row) above renders of their own factor records (bottom row).

    Each change of class, truncation or seed calls
    :func:`linkviz.toyworld.evaluation.class_samples` once and shows the
    result as PNG bytes, with the classifier's verdict on every sample.

    Parameters
    ----------
    world : ToyWorld, optional
        The models to browse (default: :func:`linkviz.load_toy_world`).
    n_samples : int
        Samples per view.
    seed : int
        Initial seed of the latents.
    """

    def __init__(self, world: ToyWorld | None = None, *, n_samples: int = 8, seed: int = 0) -> None:
        self.world = world if world is not None else load_toy_world()
        self.n_samples = n_samples
        self.class_picker = ipw.Dropdown(options=list(CLASS_NAMES), value=CLASS_NAMES[0], description="class")
        self.truncation = ipw.FloatSlider(value=0.7, min=0.0, max=1.0, step=0.05, description="psi",
                                          continuous_update=False)
        self.seed = ipw.BoundedIntText(value=seed, min=0, max=2**31 - 1, description="seed")
        self.image = ipw.Image(format="png")
        self.summary = ipw.HTML()
        self.samples: ClassSamples | None = None
        for control in (self.class_picker, self.truncation, self.seed):
            control.observe(self._on_change, names="value")
        super().__init__([ipw.HBox([self.class_picker, self.truncation, self.seed]), self.image, self.summary])
        self.refresh()

    def _on_change(self, change: dict) -> None:
        self.refresh()

    def refresh(self) -> None:
        """Recompute the samples for the current controls and update the image and summary."""
        label = CLASS_NAMES.index(self.class_picker.value)
        self.samples = class_samples(self.world.generator, self.world.classifier,
                                     np.full(self.n_samples, label), truncation_psi=self.truncation.value,
                                     seed=int(self.seed.value))
        grid = tile_images(np.concatenate([self.samples.generated, self.samples.rendered]), columns=self.n_samples,
                           zoom=2, gap=2)
        self.image.value = encode_image(grid, format="png")
        verdicts = [CLASS_NAMES[p] for p in self.samples.predicted]
        agree = sum(v == self.class_picker.value for v in verdicts)
        self.summary.value = (f"<b>{agree}/{self.n_samples}</b> generated <i>{html.escape(self.class_picker.value)}"
                              f"</i> samples classified as their class; top: generated, bottom: renders of the "
                              f"same factors. Classifier says: {html.escape(', '.join(verdicts))}")

    def _repr_mimebundle_(self, **kwargs) -> dict:
        """The live widget plus a static snapshot, so an executed, exported notebook still shows the samples."""
        return with_snapshot(super()._repr_mimebundle_(**kwargs), self.image, self.summary.value)
