"""How r moves when a unit is moved for a causal check: the unit alone, or the unit with what co-varies with it.

A unit of a CNN rarely codes a concept alone: the units that fire with it on real images carry the concept too,
and moving one of 256 units through the link barely changes the image (on the toy world, moving a dissection
detector alone mostly recolours the background; a part's share changes by about 0.005). The conditional direction
moves every unit by its linear regression on the moved unit over the link's pairs,
``E[r | r_i = t] - E[r | r_i = r_base_i] = cov[:, i] / var_i * (t - r_base_i)``, so the unit's value is the one
asked for and the rest of r follows it as on real images.

Measured on the toy world (dissection of ``layer4`` on a 100-image probe, part and object detectors, right labels
against :func:`~linkviz.labels.shuffled_labels`, share-of-image change over 10 seeds; ROC AUC):

================================  ==========  ===========
units                             ``unit``    conditional
================================  ==========  ===========
up to 4 per label (46 units)      0.61        0.93
best per label (14 units)         0.57        0.95
================================  ==========  ===========
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Literal

import numpy as np

__all__ = ["DIRECTIONS", "Direction", "r_directions"]

Direction = Literal["unit", "conditional"]
#: The directions :func:`r_directions` knows.
DIRECTIONS: tuple[str, ...] = ("unit", "conditional")


def check_direction(direction: str) -> str:
    """``direction`` if it is one of :data:`DIRECTIONS`; ValueError naming the choices otherwise."""
    if direction not in DIRECTIONS:
        raise ValueError(f"direction must be one of {DIRECTIONS}; got {direction!r}")
    return direction


def r_directions(r: np.ndarray, units: Sequence[int], direction: Direction) -> np.ndarray:
    """How r moves per unit increase of each unit.

    Parameters
    ----------
    r : ndarray, shape (N, D)
        Activations the co-variation is measured on (the link's pairs); unused for ``"unit"``.
    units : sequence of int, length U
        Units to move, in ``[0, D)``.
    direction : {"unit", "conditional"}
        ``"unit"``: the unit alone (row ``u`` is the basis vector ``e_u``); ``"conditional"``: the slope of the
        linear regression of every unit on unit ``u`` over ``r`` (``cov[:, u] / var_u``, 1 at ``u`` itself).

    Returns
    -------
    ndarray of float64, shape (U, D)

    Raises
    ------
    ValueError
        For an unknown direction, or a conditional direction of a unit that is constant over ``r`` (a dead unit:
        nothing co-varies with it).
    """
    check_direction(direction)
    r = np.asarray(r, dtype=np.float64)
    units = np.asarray(units, dtype=np.int64)
    if r.ndim != 2:
        raise ValueError(f"r must have shape (N, D); got {r.shape}")
    if direction == "unit":
        return np.eye(r.shape[1])[units]
    centred = r - r.mean(axis=0)
    variance = (centred[:, units] ** 2).sum(axis=0)
    dead = units[variance <= 0]
    if dead.size:
        raise ValueError(f"units {dead.tolist()} are constant over the {len(r)} pairs: no conditional direction; "
                         "score them with direction='unit' or leave them out")
    slopes = (centred[:, units].T @ centred) / variance[:, None]
    slopes[np.arange(len(units)), units] = 1.0
    return slopes
