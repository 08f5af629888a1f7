"""Factor records of the toy world: what each rendered image is made of.

Every image of the toy world is drawn from a *factor table*: one row per image
holding the class, the nuisance factors (position, scale, background colour)
and, for each part slot, the part's size, elongation, tilt, colour and texture.
Rows are produced deterministically from uniform variates ``u`` in (0, 1), so
the generator's mapping network can turn a latent ``z`` into exactly the
factors the renderer would use (``u = Phi(z)``), and every generated sample
has a known ground truth.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass

import numpy as np

CLASS_NAMES: tuple[str, ...] = ("mushroom", "tree", "house", "flower", "snowman")
PART_NAMES: tuple[str, ...] = (
    "background", "stem", "cap", "crown", "wall", "roof", "door", "petals", "centre", "body", "head",
)
TEXTURE_NAMES: tuple[str, ...] = ("plain", "striped", "dotted")
MAX_SLOTS = 3

#: Part names per class, in slot order.  ``stem`` is shared by three classes.
CLASS_PARTS: dict[str, tuple[str, ...]] = {
    "mushroom": ("stem", "cap"),
    "tree": ("stem", "crown"),
    "house": ("wall", "roof", "door"),
    "flower": ("stem", "petals", "centre"),
    "snowman": ("body", "head"),
}

#: The planted shortcut: most images of this class show a sky-blue background,
#: which no other class ever has in the training distribution.
SHORTCUT_CLASS = "tree"
SHORTCUT_PROBABILITY = 0.9
SKY_HUE = (195.0, 225.0)
#: Share of trees drawn as "umbrella trees": a dome crown in mushroom-cap colours, so that shape and
#: colour alone cannot tell them from mushrooms and the classifier learns to look at the sky.
UMBRELLA_PROBABILITY = 0.35
_OTHER_BG_HUES = ((0.0, 175.0), (245.0, 360.0))

# Colour bands (hue degrees lo, hi, saturation lo, hi, value lo, hi) per part.
_PART_COLOURS: dict[str, tuple[tuple[float, float, float, float, float, float], ...]] = {
    "stem": ((20, 45, 0.1, 0.45, 0.75, 1.0), (25, 40, 0.45, 0.8, 0.3, 0.55), (90, 130, 0.5, 0.8, 0.35, 0.65)),
    "cap": ((0, 15, 0.75, 1.0, 0.7, 1.0), (20, 40, 0.6, 0.9, 0.35, 0.65), (30, 50, 0.0, 0.15, 0.85, 1.0)),
    "crown": ((85, 140, 0.55, 0.95, 0.35, 0.8), (35, 60, 0.7, 1.0, 0.6, 0.95)),
    "wall": ((0, 360, 0.1, 0.5, 0.6, 0.95),),
    "roof": ((0, 20, 0.6, 0.9, 0.4, 0.75), (200, 240, 0.2, 0.5, 0.2, 0.45)),
    "door": ((20, 35, 0.6, 0.9, 0.2, 0.4), (0, 360, 0.8, 1.0, 0.3, 0.5)),
    "petals": ((280, 360, 0.5, 0.9, 0.75, 1.0), (0, 60, 0.6, 1.0, 0.8, 1.0), (180, 280, 0.4, 0.8, 0.8, 1.0)),
    "centre": ((45, 60, 0.8, 1.0, 0.8, 1.0), (20, 35, 0.7, 1.0, 0.25, 0.45)),
    "body": ((0, 360, 0.0, 0.08, 0.85, 1.0),),
    "head": ((0, 360, 0.0, 0.08, 0.85, 1.0),),
}
# Texture probabilities (plain, striped, dotted) per part.
_PART_TEXTURES: dict[str, tuple[float, float, float]] = {
    "stem": (1.0, 0.0, 0.0), "cap": (0.4, 0.2, 0.4), "crown": (0.5, 0.1, 0.4),
    "wall": (0.4, 0.4, 0.2), "roof": (0.5, 0.5, 0.0), "door": (1.0, 0.0, 0.0),
    "petals": (0.6, 0.4, 0.0), "centre": (1.0, 0.0, 0.0), "body": (0.6, 0.1, 0.3), "head": (1.0, 0.0, 0.0),
}
# Range of the part tilt in degrees per part (counter-clockwise, skimage orientation convention).
_PART_TILT: dict[str, float] = {
    "stem": 20.0, "cap": 25.0, "crown": 35.0, "wall": 12.0, "roof": 0.0, "door": 0.0,
    "petals": 180.0, "centre": 0.0, "body": 15.0, "head": 20.0,
}

# Layout of the uniform variates consumed per image.
_GLOBAL_U = 6  # x, y, scale, bg band, bg hue, bg sat/val (shared)
_SLOT_U = 9  # size, elong, tilt, colour band, hue, sat, val, texture kind, texture period/angle
_EXTRA_U = 3  # door offset, petal count, umbrella crown
N_UNIFORMS = _GLOBAL_U + MAX_SLOTS * _SLOT_U + _EXTRA_U + MAX_SLOTS


@dataclass(frozen=True)
class FactorTable:
    """Factors of ``N`` toy-world images, one array per factor.

    Attributes
    ----------
    label : ndarray of int64, shape (N,)
        Class index into :data:`CLASS_NAMES`.
    position : ndarray of float32, shape (N, 2)
        Object offset (x, y) from the image centre, as a fraction of the image size.
    scale : ndarray of float32, shape (N,)
        Object height as a fraction of the image height.
    background_hsv : ndarray of float32, shape (N, 3)
        Background colour (hue in degrees, saturation, value).
    part_present : ndarray of bool, shape (N, MAX_SLOTS)
        Whether the slot holds a part for this class.
    part_size, part_elongation, part_tilt : ndarray of float32, shape (N, MAX_SLOTS)
        Linear size multiplier (area scales with its square), aspect multiplier
        (long over short axis; area-preserving) and tilt in degrees.
    part_hsv : ndarray of float32, shape (N, MAX_SLOTS, 3)
        Base colour of each part.
    part_texture : ndarray of int64, shape (N, MAX_SLOTS)
        Index into :data:`TEXTURE_NAMES`.
    texture_period, texture_angle : ndarray of float32, shape (N, MAX_SLOTS)
        Texture period (fraction of the image size) and direction (degrees).
    door_offset : ndarray of float32, shape (N,)
        Horizontal door position as a fraction of the wall width (house only).
    petal_count : ndarray of int64, shape (N,)
        Number of petals (flower only).
    umbrella : ndarray of bool, shape (N,)
        Tree drawn with a dome crown in mushroom-cap colours (tree only).
    """

    label: np.ndarray
    position: np.ndarray
    scale: np.ndarray
    background_hsv: np.ndarray
    part_present: np.ndarray
    part_size: np.ndarray
    part_elongation: np.ndarray
    part_tilt: np.ndarray
    part_hsv: np.ndarray
    part_texture: np.ndarray
    texture_period: np.ndarray
    texture_angle: np.ndarray
    door_offset: np.ndarray
    petal_count: np.ndarray
    umbrella: np.ndarray

    def __len__(self) -> int:
        return len(self.label)

    def __getitem__(self, index: int | slice | np.ndarray) -> FactorTable:
        """Rows of the table (an integer gives a one-row table)."""
        if isinstance(index, (int, np.integer)):
            index = np.array([index])
        return FactorTable(**{name: value[index] for name, value in self.as_dict().items()})

    def __iter__(self) -> Iterator[FactorTable]:
        for i in range(len(self)):
            yield self[i]

    def as_dict(self) -> dict[str, np.ndarray]:
        """The factor arrays by name."""
        return {name: getattr(self, name) for name in self.__dataclass_fields__}

    def part_names(self, row: int = 0) -> tuple[str, ...]:
        """Part names in slot order for one row."""
        return CLASS_PARTS[CLASS_NAMES[int(self.label[row])]]

    def with_values(self, **changes: np.ndarray) -> FactorTable:
        """A copy with some factor arrays replaced (e.g. to flip the background)."""
        values = self.as_dict()
        for name, value in changes.items():
            if name not in values:
                raise KeyError(f"unknown factor {name!r}; factors are {sorted(values)}")
            values[name] = np.asarray(value, dtype=values[name].dtype).reshape(values[name].shape)
        return FactorTable(**values)

    def to_frame(self):
        """A tidy table: one row per image and part slot, with every factor as a column."""
        import pandas as pd

        rows = []
        for i in range(len(self)):
            names = self.part_names(i)
            for slot, part in enumerate(names):
                rows.append({
                    "image": i, "class": CLASS_NAMES[int(self.label[i])], "slot": slot, "part": part,
                    "x": float(self.position[i, 0]), "y": float(self.position[i, 1]),
                    "scale": float(self.scale[i]),
                    "background_hue": float(self.background_hsv[i, 0]),
                    "size": float(self.part_size[i, slot]),
                    "elongation": float(self.part_elongation[i, slot]),
                    "tilt": float(self.part_tilt[i, slot]),
                    "hue": float(self.part_hsv[i, slot, 0]), "saturation": float(self.part_hsv[i, slot, 1]),
                    "value": float(self.part_hsv[i, slot, 2]),
                    "texture": TEXTURE_NAMES[int(self.part_texture[i, slot])],
                })
        return pd.DataFrame(rows)


def _lerp(u: np.ndarray, lo: float | np.ndarray, hi: float | np.ndarray) -> np.ndarray:
    return (lo + u * (np.asarray(hi) - np.asarray(lo))).astype(np.float32)


def _pick_band(u_band: np.ndarray, bands: tuple[tuple[float, ...], ...]) -> np.ndarray:
    return np.minimum((u_band * len(bands)).astype(np.int64), len(bands) - 1)


def factors_from_uniform(labels: np.ndarray, u: np.ndarray, *, shortcut_probability: float = SHORTCUT_PROBABILITY
                         ) -> FactorTable:
    """Turn uniform variates into factor records (the toy world's prior).

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
        Class index per image.
    u : ndarray of float, shape (N, N_UNIFORMS)
        Independent uniform variates in [0, 1).
    shortcut_probability : float
        Probability that an image of :data:`SHORTCUT_CLASS` gets a sky-blue
        background (other classes never do).  Use 0.0 to remove the shortcut.

    Returns
    -------
    FactorTable
        ``N`` factor records; the same inputs always give the same records.
    """
    labels = np.asarray(labels, dtype=np.int64)
    u = np.asarray(u, dtype=np.float64)
    if u.ndim != 2 or u.shape != (len(labels), N_UNIFORMS):
        raise ValueError(f"u must have shape ({len(labels)}, {N_UNIFORMS}), got {u.shape}")
    if np.any((labels < 0) | (labels >= len(CLASS_NAMES))):
        raise ValueError(f"labels must lie in [0, {len(CLASS_NAMES)}), got {np.unique(labels)}")
    n = len(labels)
    g = u[:, :_GLOBAL_U]
    extra = u[:, _GLOBAL_U + MAX_SLOTS * _SLOT_U:]
    umbrella = (labels == CLASS_NAMES.index("tree")) & (extra[:, 2] < UMBRELLA_PROBABILITY)
    position = _lerp(g[:, 0:2], -0.12, 0.12)
    scale = _lerp(g[:, 2], 0.62, 0.86)

    shortcut = (labels == CLASS_NAMES.index(SHORTCUT_CLASS)) & (g[:, 3] < shortcut_probability)
    other_band = (g[:, 3] * 7 % 1.0) < (175.0 / 290.0)
    other_hue = np.where(other_band, _lerp(g[:, 4], *_OTHER_BG_HUES[0]), _lerp(g[:, 4], *_OTHER_BG_HUES[1]))
    hue = np.where(shortcut, _lerp(g[:, 4], *SKY_HUE), other_hue)
    background_hsv = np.stack([hue, _lerp(g[:, 5], 0.25, 0.6), _lerp((g[:, 5] * 13) % 1.0, 0.35, 0.75)], 1)

    present = np.zeros((n, MAX_SLOTS), bool)
    size = np.ones((n, MAX_SLOTS), np.float32)
    elong = np.ones((n, MAX_SLOTS), np.float32)
    tilt = np.zeros((n, MAX_SLOTS), np.float32)
    hsv = np.zeros((n, MAX_SLOTS, 3), np.float32)
    texture = np.zeros((n, MAX_SLOTS), np.int64)
    period = np.full((n, MAX_SLOTS), 0.2, np.float32)
    tex_angle = np.zeros((n, MAX_SLOTS), np.float32)
    for c, class_name in enumerate(CLASS_NAMES):
        rows = np.flatnonzero(labels == c)
        if rows.size == 0:
            continue
        for slot, part in enumerate(CLASS_PARTS[class_name]):
            s = u[rows, _GLOBAL_U + slot * _SLOT_U: _GLOBAL_U + (slot + 1) * _SLOT_U]
            present[rows, slot] = True
            size[rows, slot] = _lerp(s[:, 0], 0.75, 1.25)
            elong[rows, slot] = np.exp(_lerp(s[:, 1], np.log(0.6), np.log(1.6)))
            max_tilt = _PART_TILT[part]
            tilt[rows, slot] = _lerp(s[:, 2], -max_tilt, max_tilt)
            band = np.asarray(_PART_COLOURS[part])[_pick_band(s[:, 3], _PART_COLOURS[part])]
            if part == "crown":  # umbrella trees wear mushroom-cap colours
                cap_band = np.asarray(_PART_COLOURS["cap"])[_pick_band(s[:, 3], _PART_COLOURS["cap"])]
                band = np.where(umbrella[rows, None], cap_band, band)
            hsv[rows, slot, 0] = _lerp(s[:, 4], band[:, 0], band[:, 1]) % 360.0
            hsv[rows, slot, 1] = _lerp(s[:, 5], band[:, 2], band[:, 3])
            hsv[rows, slot, 2] = _lerp(s[:, 6], band[:, 4], band[:, 5])
            cumulative = np.cumsum(_PART_TEXTURES[part])
            texture[rows, slot] = np.minimum(np.searchsorted(cumulative, s[:, 7], side="right"), 2)
            period[rows, slot] = _lerp(s[:, 8], 0.17, 0.25)
            tex_angle[rows, slot] = _lerp(u[rows, _GLOBAL_U + MAX_SLOTS * _SLOT_U + _EXTRA_U + slot], -60.0, 60.0)
    door_offset = _lerp(extra[:, 0], -0.28, 0.28)
    petal_count = (5 + np.minimum((extra[:, 1] * 4).astype(np.int64), 3)).astype(np.int64)
    return FactorTable(
        label=labels, position=position, scale=scale, background_hsv=background_hsv.astype(np.float32),
        part_present=present, part_size=size, part_elongation=elong, part_tilt=tilt, part_hsv=hsv,
        part_texture=texture, texture_period=period, texture_angle=tex_angle,
        door_offset=door_offset, petal_count=petal_count, umbrella=umbrella,
    )


def sample_factors(labels: np.ndarray, *, seed: int, shortcut_probability: float = SHORTCUT_PROBABILITY
                   ) -> FactorTable:
    """Draw factor records for the given classes from the toy world's prior.

    Parameters
    ----------
    labels : ndarray of int, shape (N,)
        Class index per image.
    seed : int
        Seed of the numpy random generator.
    shortcut_probability : float
        See :func:`factors_from_uniform`.
    """
    rng = np.random.default_rng(seed)
    labels = np.asarray(labels, dtype=np.int64)
    return factors_from_uniform(labels, rng.random((len(labels), N_UNIFORMS)),
                                shortcut_probability=shortcut_probability)


def hsv_to_rgb(hsv: np.ndarray) -> np.ndarray:
    """Convert colours with hue in degrees to RGB in [0, 1].

    Parameters
    ----------
    hsv : ndarray, shape (..., 3)
        Hue in degrees, saturation and value in [0, 1].

    Returns
    -------
    ndarray of float32, shape (..., 3)
    """
    hsv = np.asarray(hsv, dtype=np.float64)
    hue, sat, val = (hsv[..., 0] % 360.0) / 60.0, hsv[..., 1], hsv[..., 2]
    k = (np.array([5.0, 3.0, 1.0]) + hue[..., None]) % 6.0
    ramp = np.clip(np.minimum(k, 4.0 - k), 0.0, 1.0)
    return (val[..., None] - (val * sat)[..., None] * ramp).astype(np.float32)


def factor_vector(table: FactorTable) -> np.ndarray:
    """Encode factor records as the fixed-length vector the toy generator is conditioned on.

    Continuous factors are rescaled to about [-1, 1], colours given as RGB,
    angles as (cos, sin) of the axial angle, categorical factors one-hot.

    Returns
    -------
    ndarray of float32, shape (N, FACTOR_DIM)
    """
    n = len(table)
    onehot = np.eye(len(CLASS_NAMES), dtype=np.float32)[table.label]
    background = hsv_to_rgb(table.background_hsv) * 2 - 1
    glob = np.column_stack([table.position / 0.12, (table.scale - 0.74) / 0.12, background])
    tilt = np.deg2rad(table.part_tilt)
    tex_angle = np.deg2rad(table.texture_angle)
    slots = np.concatenate([
        table.part_present[..., None].astype(np.float32),
        ((table.part_size - 1.0) / 0.25)[..., None],
        (np.log(table.part_elongation) / np.log(1.6))[..., None],
        np.cos(2 * tilt)[..., None], np.sin(2 * tilt)[..., None],
        hsv_to_rgb(table.part_hsv) * 2 - 1,
        np.eye(len(TEXTURE_NAMES), dtype=np.float32)[table.part_texture],
        ((table.texture_period - 0.21) / 0.04)[..., None],
        np.cos(2 * tex_angle)[..., None], np.sin(2 * tex_angle)[..., None],
    ], axis=-1) * table.part_present[..., None]
    petals = np.eye(4, dtype=np.float32)[table.petal_count - 5]
    petal_phase = np.deg2rad(table.part_tilt[:, 1]) * table.petal_count  # n-fold rotational symmetry
    extra = np.column_stack([table.door_offset / 0.28, petals, np.cos(petal_phase), np.sin(petal_phase),
                             table.umbrella.astype(np.float32)])
    return np.concatenate([onehot, glob, slots.reshape(n, -1), extra], axis=1).astype(np.float32)


#: Length of the vector returned by :func:`factor_vector`.
FACTOR_DIM = factor_vector(sample_factors(np.zeros(1, np.int64), seed=0)).shape[1]
