"""Analytic pattern geometry of the toy world: texture waves and petal phases.

A striped part shows its second colour where ``sin(2 pi a) > 0`` and a dotted
part where ``a`` and ``b`` are both near a half period, with ``a`` and ``b``
the distances along and across the stripe direction measured from the part's
texture anchor, in periods (see :mod:`~linkviz.worlds.toy.render`).  Both are
plane waves ``a = k . p + phi`` over image positions ``p``, so a decoder that
is handed ``k`` and ``phi`` can draw textures exactly instead of averaging
them away.  Flower petals sit at ``n`` equal angles around the flower head,
the zero crossings of ``cos(n angle - psi)``.

:func:`pattern_geometry` computes these numbers from factor records (the
generator's conditioning and training target); :func:`pattern_planes`
evaluates the waves on a pixel grid from the same numbers as the generator
reads them out of ``w``.
"""

from __future__ import annotations

import math

import numpy as np
import torch

from .factors import CLASS_NAMES, MAX_SLOTS, FactorTable
from .render import texture_frames

#: Petal counts the renderer draws.
PETAL_COUNTS: tuple[int, ...] = (5, 6, 7, 8)
#: Wave vectors are stored divided by this many cycles per image, so they lie in about [-1, 1].
WAVE_SCALE = 6.0
_SLOT_DIM = 6  # k_row, k_col, cos/sin of the phase along, cos/sin of the phase across
_PETAL_DIM = 2 + 2 * len(PETAL_COUNTS)  # head position, cos/sin of psi_n per petal count
PATTERN_DIM = MAX_SLOTS * _SLOT_DIM + _PETAL_DIM
#: Number of planes :func:`pattern_planes` returns.
N_PLANES = 4 * MAX_SLOTS + len(PETAL_COUNTS) + 1


def pattern_geometry(table: FactorTable) -> np.ndarray:
    """Texture waves per part slot and petal phases of factor records.

    Returns
    -------
    ndarray of float32, shape (N, PATTERN_DIM)
        Per slot: the wave vector ``k`` (cycles per image / WAVE_SCALE, in
        (row, col) order) and (cos, sin) of ``2 pi phi`` for the waves along
        and across the stripes; then the flower head position (``2 p - 1``)
        and (cos, sin) of ``psi_n`` for each of :data:`PETAL_COUNTS`.  Absent
        slots and non-flowers get zeros.
    """
    out = np.zeros((len(table), PATTERN_DIM), np.float32)
    flower = CLASS_NAMES.index("flower")
    for i in range(len(table)):
        frames = texture_frames(table, i)
        for slot, part in enumerate(table.part_names(i)):
            frame = frames[part]
            along = np.array([math.cos(frame.theta), math.sin(frame.theta)]) / frame.period
            across = np.array([-along[1], along[0]])
            anchor = np.array([frame.row, frame.col])
            phase_along, phase_across = -2 * math.pi * along @ anchor, -2 * math.pi * across @ anchor
            out[i, slot * _SLOT_DIM:(slot + 1) * _SLOT_DIM] = [
                along[0] / WAVE_SCALE, along[1] / WAVE_SCALE, math.cos(phase_along), math.sin(phase_along),
                math.cos(phase_across), math.sin(phase_across)]
        if table.label[i] == flower:
            head = frames["petals"]
            petal_angle = math.radians(float(table.part_tilt[i, 1])) + math.pi
            psi = [n * petal_angle for n in PETAL_COUNTS]
            out[i, MAX_SLOTS * _SLOT_DIM:] = [2 * head.row - 1, 2 * head.col - 1, *np.cos(psi), *np.sin(psi)]
    return out


def _unit_phases(geometry: torch.Tensor) -> torch.Tensor:
    """Scale every (cos, sin) pair of a geometry tensor (N, PATTERN_DIM) to unit length."""
    n_counts = len(PETAL_COUNTS)
    cos_index = [slot * _SLOT_DIM + k for slot in range(MAX_SLOTS) for k in (2, 4)]
    cos_index += [MAX_SLOTS * _SLOT_DIM + 2 + j for j in range(n_counts)]
    sin_index = [slot * _SLOT_DIM + k for slot in range(MAX_SLOTS) for k in (3, 5)]
    sin_index += [MAX_SLOTS * _SLOT_DIM + 2 + n_counts + j for j in range(n_counts)]
    cos, sin = geometry[:, cos_index], geometry[:, sin_index]
    norm = torch.sqrt(cos ** 2 + sin ** 2 + 1e-4)
    unit = geometry.clone()
    unit[:, cos_index], unit[:, sin_index] = cos / norm, sin / norm
    return unit


def pixel_centres(resolution: int, device: torch.device | str = "cpu") -> tuple[torch.Tensor, torch.Tensor]:
    """Row and column of every pixel centre as image fractions, each shape (resolution, resolution)."""
    grid = (torch.arange(resolution, device=device, dtype=torch.float32) + 0.5) / resolution
    return torch.meshgrid(grid, grid, indexing="ij")


def pattern_planes(geometry: torch.Tensor, resolution: int) -> torch.Tensor:
    """Evaluate texture waves and petal waves on a pixel grid.

    Parameters
    ----------
    geometry : Tensor, shape (N, PATTERN_DIM)
        As returned by :func:`pattern_geometry` (or read out of ``w``).
    resolution : int
        Side length of the grid.

    Returns
    -------
    Tensor, shape (N, N_PLANES, resolution, resolution)
        Per slot sin and cos of ``2 pi a`` and of ``2 pi b``; then
        ``cos(n angle - psi_n)`` around the flower head for each petal count,
        and the distance to the head.

    Notes
    -----
    Each (cos, sin) pair is normalised to unit length first, so geometry
    that only knows a texture's frequency and not its phase (e.g. a latent
    averaged over examples, or predicted from a classifier's activations)
    still draws full-contrast waves at some phase.
    """
    geometry = _unit_phases(geometry)
    rows, cols = pixel_centres(resolution, geometry.device)
    planes = []
    for slot in range(MAX_SLOTS):
        k_row, k_col, cos_a, sin_a, cos_b, sin_b = geometry[:, slot * _SLOT_DIM:(slot + 1) * _SLOT_DIM].T[
            ..., None, None] * torch.tensor([WAVE_SCALE, WAVE_SCALE, 1, 1, 1, 1], device=geometry.device)[
            :, None, None, None]
        along = 2 * math.pi * (k_row * rows + k_col * cols)
        across = 2 * math.pi * (-k_col * rows + k_row * cols)
        planes += [torch.sin(along) * cos_a + torch.cos(along) * sin_a,
                   torch.cos(along) * cos_a - torch.sin(along) * sin_a,
                   torch.sin(across) * cos_b + torch.cos(across) * sin_b,
                   torch.cos(across) * cos_b - torch.sin(across) * sin_b]
    petals = geometry[:, MAX_SLOTS * _SLOT_DIM:, None, None]
    d_row, d_col = rows - (petals[:, 0] + 1) / 2, cols - (petals[:, 1] + 1) / 2
    angle = torch.atan2(d_col, d_row)
    n_counts = len(PETAL_COUNTS)
    for j, n in enumerate(PETAL_COUNTS):
        planes.append(torch.cos(n * angle) * petals[:, 2 + j] + torch.sin(n * angle) * petals[:, 2 + n_counts + j])
    planes.append(torch.sqrt(d_row ** 2 + d_col ** 2 + 1e-6))
    return torch.stack(planes, 1)
