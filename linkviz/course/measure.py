"""What tuning one unit does to the parts of generated images, measured with the world's part segmenter."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from linkviz.quantify.changes import relative_area_change
from linkviz.quantify.part_metrics import measure_parts, visibility_threshold
from linkviz.tuning import tuned_latents

__all__ = ["hoyer_sparsity", "unit_part_changes"]


def unit_part_changes(course, unit: int, *, class_name: str = "mushroom", n_examples: int = 3) -> pd.DataFrame:
    """Mean change of every part metric when ``unit`` goes from its observed minimum to its maximum.

    Parameters
    ----------
    course : Course
    unit : int
        A unit of r, in ``[0, D)``.
    class_name : str
        Class of the base examples.
    n_examples : int
        Base examples averaged over.

    Returns
    -------
    DataFrame
        ``label, metric, change``: mean over examples (relative change for area, /255 for luminance, plain
        difference otherwise; NaN where the part is not visible).
    """
    linked = course.linked
    n_units = linked.link.r_dim
    if not 0 <= int(unit) < n_units:
        raise ValueError(f"unit must be in [0, {n_units}); got {unit}")
    unit = int(unit)
    rows = course.examples(class_name, n_examples)
    r_base = torch.as_tensor(linked.pairs.r[rows], dtype=torch.float32)
    values = np.array([linked.stats.min[unit], linked.stats.max[unit]], dtype=np.float32)
    w = tuned_latents(linked.link, r_base, unit, values).detach()          # [N, 2, w_dim]
    flat = w.reshape(-1, w.shape[-1])
    rendered = linked.render(flat)                                          # [N * 2, H, W, 3]
    images = rendered.reshape(len(rows), 2, *rendered.shape[1:])
    segmenter = course.segmenter  # trained (or loaded) on first use, outside no_grad
    with torch.no_grad():
        masks = np.asarray(segmenter(flat)).reshape(len(rows), 2, *images.shape[2:4])
    labels = course.world.part_names
    floor = visibility_threshold(images.shape[2:4])
    changes = []
    for example_images, example_masks in zip(images, masks):
        parts = measure_parts(example_images, example_masks, labels).parts.set_index(["step", "label"])
        low, high = parts.loc[0], parts.loc[1]
        for label in low.index:
            changes.append({"label": label, "metric": "area",
                            "change": float(relative_area_change(high.loc[label, "area"], low.loc[label, "area"],
                                                                 floor=floor))})
            changes.append({"label": label, "metric": "luminance",
                            "change": float(high.loc[label, "luminance"] - low.loc[label, "luminance"]) / 255.0})
    frame = pd.DataFrame(changes)
    return frame.groupby(["label", "metric"], sort=False)["change"].mean().reset_index()


def hoyer_sparsity(vector: np.ndarray) -> float:
    """Hoyer's sparsity of ``|vector|`` (shape (L,)): 1 when one entry holds everything, 0 when all are equal."""
    values = np.abs(np.nan_to_num(np.asarray(vector, dtype=np.float64)))
    n = values.size
    norm = np.sqrt((values ** 2).sum())
    if n < 2 or norm == 0:
        return float("nan")
    return float((np.sqrt(n) - values.sum() / norm) / (np.sqrt(n) - 1))
