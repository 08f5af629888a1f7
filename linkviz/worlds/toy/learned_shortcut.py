"""The shortcut as the toy classifier learned it: which background hues make it call an object a tree.

The toy world plants :data:`~linkviz.worlds.toy.factors.SKY_HUE` as the sky band of
:data:`~linkviz.worlds.toy.factors.SHORTCUT_CLASS`; what the classifier took from it is measured here, on renders
with a known background, not assumed.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np
import pandas as pd

from linkviz.worlds.toy.factors import CLASS_NAMES, SHORTCUT_CLASS, sample_factors
from linkviz.worlds.toy.render import render

if TYPE_CHECKING:
    from linkviz.worlds.toy.world import ToyWorld

__all__ = ["learned_shortcut_band"]


def learned_shortcut_band(world: ToyWorld, *, origin: str = "mushroom", target: str = SHORTCUT_CLASS,
                          n_records: int = 24, hue_step: float = 5.0, threshold: float = 0.5, seed: int = 0
                          ) -> tuple[tuple[float, float], pd.DataFrame]:
    """The background hues at which the toy classifier calls rendered ``origin`` records ``target``.

    Ground truth of the shortcut as the classifier learned it: ``n_records`` records of ``origin`` from the toy
    prior (seed ``seed``) are rendered with their background hue set to each of ``0, hue_step, ... < 360``
    (everything else kept) and classified. The band is the run of hues around the curve's maximum where the median
    ``p(target)`` exceeds ``threshold``, its ends interpolated linearly to the crossings.

    Parameters
    ----------
    world : ToyWorld
        Its classifier is asked; images are rendered at its generator's resolution.

    Returns
    -------
    band : (float, float)
        ``(lo, hi)`` in degrees.
    curve : DataFrame
        ``hue, median, share``: per swept hue, the median ``p(target)`` over the records and the share of records
        whose ``p(target)`` exceeds ``threshold``.
    """
    if not (0.0 < hue_step <= 30.0 and n_records >= 1 and 0.0 < threshold < 1.0):
        raise ValueError(f"need 0 < hue_step <= 30, n_records >= 1 and 0 < threshold < 1; got {hue_step}, "
                         f"{n_records}, {threshold}")
    table = sample_factors(np.full(n_records, CLASS_NAMES.index(origin)), seed=seed)
    hues, probabilities = np.arange(0.0, 360.0, hue_step), []
    for hue in hues:
        background = table.background_hsv.copy()
        background[:, 0] = hue
        images = render(table.with_values(background_hsv=background), resolution=world.generator.img_resolution)
        logits, _ = world.classifier.forward_generated(images.images_as_tensor())
        probabilities.append(logits.softmax(dim=1)[:, CLASS_NAMES.index(target)].cpu().numpy())
    probability = np.asarray(probabilities)  # [hues, records]
    median = np.median(probability, axis=1)
    curve = pd.DataFrame({"hue": hues, "median": median, "share": (probability > threshold).mean(axis=1)})
    peak, above = int(np.argmax(median)), median > threshold
    if not above[peak] or above.all():
        raise ValueError(f"the median p({target}) of {origin} renders exceeds {threshold} at no hue or at every hue "
                         f"(range {median.min():.3f}-{median.max():.3f}): there is no band to report")
    lo, hi = peak, peak
    while above[(lo - 1) % len(hues)]:
        lo -= 1
    while above[(hi + 1) % len(hues)]:
        hi += 1

    def crossing(inside: int, outside: int) -> float:
        a, b = median[inside], median[outside % len(hues)]
        return float(hues[inside] + (outside - inside) * hue_step * (a - threshold) / (a - b))

    band = (crossing(lo, lo - 1), crossing(hi, hi + 1))
    if band[0] < 0.0 or band[1] >= 360.0:
        raise ValueError(f"the band of {origin} renders called {target}, {band}, wraps around hue 0; "
                         f"band_distance needs 0 <= lo <= hi < 360")
    return band, curve
