"""Procedural renderer of the toy world: factor records to images with ground truth.

Objects are drawn as polygons on a canvas at twice the output resolution and
averaged 2x2, so edges are anti-aliased.  Each part is a rectangle, ellipse,
dome or triangle placed by its size, elongation and tilt; textures (stripes,
dots) move and rotate with their part.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
from skimage.draw import polygon

from .concepts import colour_name_mask
from .factors import CLASS_NAMES, CLASS_PARTS, PART_NAMES, FactorTable, hsv_to_rgb

SUPERSAMPLING = 2
_ELLIPSE_POINTS = 72


@dataclass(frozen=True)
class RenderBatch:
    """Rendered toy-world images with their ground truth.

    Attributes
    ----------
    images : ndarray of uint8, shape (N, R, R, 3)
    part_masks : ndarray of int64, shape (N, R, R)
        Index into :data:`~linkviz.worlds.toy.factors.PART_NAMES` (0 = background).
    colour_masks : ndarray of int64, shape (N, R, R)
        Index into :data:`~linkviz.worlds.toy.concepts.COLOUR_NAMES` of each pixel's colour.
    texture_masks : ndarray of int64, shape (N, R, R)
        0 on the background, else 1 + index into ``TEXTURE_NAMES`` of the part's texture.
    factors : FactorTable
        The records the images were drawn from.
    """

    images: np.ndarray
    part_masks: np.ndarray
    colour_masks: np.ndarray
    texture_masks: np.ndarray
    factors: FactorTable

    def __len__(self) -> int:
        return len(self.images)

    def images_as_tensor(self):
        """Images as a float tensor in [-1, 1], shape (N, 3, R, R) (the generator's convention)."""
        import torch

        return torch.from_numpy(self.images).permute(0, 3, 1, 2).float().div(127.5).sub(1.0)


@dataclass(frozen=True)
class _Pose:
    """Where a part sits on the canvas: its anchor (row, col) and tilt in radians."""

    row: float
    col: float
    tilt: float

    @property
    def up(self) -> np.ndarray:
        return np.array([-np.cos(self.tilt), -np.sin(self.tilt)])

    @property
    def right(self) -> np.ndarray:
        return np.array([-np.sin(self.tilt), np.cos(self.tilt)])

    def point(self, along: float, across: float = 0.0) -> np.ndarray:
        return np.array([self.row, self.col]) + along * self.up + across * self.right

    def place(self, along: np.ndarray, across: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        points = np.array([self.row, self.col])[:, None] + np.outer(self.up, along) + np.outer(self.right, across)
        return points[0], points[1]


def _rectangle(length: float, width: float) -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.0, length, length, 0.0]), np.array([-width / 2, -width / 2, width / 2, width / 2])


def _ellipse(along: float, across: float, *, dome: bool = False) -> tuple[np.ndarray, np.ndarray]:
    t = np.linspace(-np.pi / 2, np.pi / 2, _ELLIPSE_POINTS) if dome else np.linspace(0, 2 * np.pi, _ELLIPSE_POINTS,
                                                                                         endpoint=False)
    return along * np.cos(t), across * np.sin(t)


def _triangle(height: float, base: float) -> tuple[np.ndarray, np.ndarray]:
    return np.array([0.0, height, 0.0]), np.array([-base / 2, 0.0, base / 2])


def _texture_pattern(rows: np.ndarray, cols: np.ndarray, pose: _Pose, kind: int, period: float,
                     angle_deg: float) -> np.ndarray:
    """True where a textured part shows its second colour."""
    if kind == 0:
        return np.zeros(rows.shape, bool)
    theta = pose.tilt + np.deg2rad(angle_deg)
    d_row, d_col = rows - pose.row, cols - pose.col
    a = (d_row * np.cos(theta) + d_col * np.sin(theta)) / period
    if kind == 1:
        return (a % 1.0) < 0.5
    b = (-d_row * np.sin(theta) + d_col * np.cos(theta)) / period
    return np.hypot(a % 1.0 - 0.5, b % 1.0 - 0.5) < 0.27


def _second_colour(hsv: np.ndarray) -> np.ndarray:
    hue, sat, val = hsv
    return np.array([hue, sat, val - 0.45 if val > 0.5 else val + 0.45])


class _Canvas:
    """A supersampled RGB canvas with a part-label and texture layer."""

    def __init__(self, size: int, background_rgb: np.ndarray) -> None:
        self.size = size
        self.rgb = np.empty((size, size, 3), np.float32)
        self.rgb[:] = background_rgb
        self.parts = np.zeros((size, size), np.int64)
        self.textures = np.zeros((size, size), np.int64)

    def fill(self, shape: tuple[np.ndarray, np.ndarray], pose: _Pose, part: str, hsv: np.ndarray, texture: int,
             period: float, texture_angle: float, texture_pose: _Pose | None = None) -> None:
        """Draw one part; its texture is laid out in ``texture_pose`` (default: the part's own pose)."""
        rows, cols = polygon(*pose.place(*shape), shape=(self.size, self.size))
        pattern = _texture_pattern(rows + 0.5, cols + 0.5, texture_pose or pose, texture, period, texture_angle)
        colours = hsv_to_rgb(np.stack([hsv, _second_colour(hsv)]))
        self.rgb[rows, cols] = colours[pattern.astype(np.int64)]
        self.parts[rows, cols] = PART_NAMES.index(part)
        self.textures[rows, cols] = 1 + texture


@dataclass(frozen=True)
class TextureFrame:
    """Where a part's texture is anchored, in image fractions: the stripes' phase is 0 at the anchor.

    Attributes
    ----------
    row, col : float
        Anchor position as a fraction of the image size.
    theta : float
        Direction (radians, in (row, col) coordinates) along which the stripe phase grows.
    period : float
        Texture period as a fraction of the image size.
    """

    row: float
    col: float
    theta: float
    period: float


class _LayoutRecorder:
    """Stands in for :class:`_Canvas` to record each part's texture frame without drawing anything."""

    def __init__(self, size: int) -> None:
        self.size = size
        self.frames: dict[str, TextureFrame] = {}

    def fill(self, shape: tuple[np.ndarray, np.ndarray], pose: _Pose, part: str, hsv: np.ndarray, texture: int,
             period: float, texture_angle: float, texture_pose: _Pose | None = None) -> None:
        anchor = texture_pose or pose
        self.frames.setdefault(part, TextureFrame(anchor.row / self.size, anchor.col / self.size,
                                                  anchor.tilt + np.deg2rad(texture_angle), period / self.size))


def texture_frames(table: FactorTable, index: int = 0) -> dict[str, TextureFrame]:
    """The texture frame of every part of row ``index``, by part name (no rasterisation)."""
    recorder = _LayoutRecorder(64 * SUPERSAMPLING)
    _draw_object(recorder, table, index)
    return recorder.frames


def _draw_object(canvas: _Canvas | _LayoutRecorder, table: FactorTable, i: int) -> None:
    size = canvas.size
    height = table.scale[i] * size
    bottom = _Pose(size / 2 + table.position[i, 1] * size + height / 2, size / 2 + table.position[i, 0] * size, 0.0)
    class_name = CLASS_NAMES[int(table.label[i])]
    tilt = np.deg2rad(table.part_tilt[i])
    stretch = np.sqrt(table.part_elongation[i])
    dims = table.part_size[i] * height

    def style(slot: int) -> dict:
        return dict(part=CLASS_PARTS[class_name][slot], hsv=table.part_hsv[i, slot],
                    texture=int(table.part_texture[i, slot]), period=float(table.texture_period[i, slot] * size),
                    texture_angle=float(table.texture_angle[i, slot]))

    def long_short(slot: int, along: float, across: float) -> tuple[float, float]:
        return along * dims[slot] * stretch[slot], across * dims[slot] / stretch[slot]

    if class_name in ("mushroom", "tree", "flower"):
        stem_len, stem_width = long_short(0, {"mushroom": 0.42, "tree": 0.4, "flower": 0.5}[class_name],
                                          {"mushroom": 0.17, "tree": 0.13, "flower": 0.06}[class_name])
        stem = _Pose(bottom.row, bottom.col, tilt[0])
        canvas.fill(_rectangle(stem_len, stem_width), stem, **style(0))
        top = stem.point(stem_len)
        if class_name == "mushroom":
            along, across = long_short(1, 0.3, 0.42)
            cap = _Pose(*stem.point(stem_len - 0.04 * height), tilt[1])
            canvas.fill(_ellipse(along, across, dome=True), cap, **style(1))
        elif class_name == "tree" and table.umbrella[i]:
            along, across = long_short(1, 0.3, 0.42)
            crown = _Pose(*stem.point(stem_len - 0.04 * height), tilt[1])
            canvas.fill(_ellipse(along, across, dome=True), crown, **style(1))
        elif class_name == "tree":
            along, across = long_short(1, 0.32, 0.28)
            anchor = _Pose(top[0], top[1], tilt[1])
            crown = _Pose(*anchor.point(0.8 * along), tilt[1])
            canvas.fill(_ellipse(along, across), crown, **style(1))
        else:
            along, across = long_short(1, 0.18, 0.075)
            count = int(table.petal_count[i])
            flower_head = _Pose(top[0], top[1], tilt[1])  # all petals share one texture frame
            for k in range(count):
                petal_tilt = tilt[1] + 2 * np.pi * k / count
                centre = _Pose(top[0], top[1], petal_tilt)
                distance = 0.1 * height * table.part_size[i, 1] + 0.75 * along
                canvas.fill(_ellipse(along, across), _Pose(*centre.point(distance), petal_tilt), **style(1),
                            texture_pose=flower_head)
            radius_along, radius_across = long_short(2, 0.095, 0.095)
            canvas.fill(_ellipse(radius_along, radius_across), _Pose(top[0], top[1], tilt[2]), **style(2))
    elif class_name == "house":
        wall_height, wall_width = long_short(0, 0.5, 0.72)
        wall = _Pose(bottom.row, bottom.col, tilt[0])
        canvas.fill(_rectangle(wall_height, wall_width), wall, **style(0))
        roof_height, roof_base = long_short(1, 0.4, 0.85)
        roof = _Pose(*wall.point(wall_height - 0.01 * height), tilt[0])
        canvas.fill(_triangle(roof_height, max(roof_base, 1.1 * wall_width)), roof, **style(1))
        door_height, door_width = long_short(2, 0.28, 0.15)
        door_height = min(door_height, 0.8 * wall_height)
        offset = table.door_offset[i] * max(wall_width - door_width, 0.0)
        door = _Pose(*wall.point(0.0, offset), tilt[0])
        canvas.fill(_rectangle(door_height, min(door_width, 0.6 * wall_width)), door, **style(2))
    else:  # snowman
        body_along, body_across = long_short(0, 0.27, 0.29)
        base = _Pose(bottom.row, bottom.col, tilt[0])
        body = _Pose(*base.point(body_along), tilt[0])
        canvas.fill(_ellipse(body_along, body_across), body, **style(0))
        head_along, head_across = long_short(1, 0.17, 0.16)
        neck = _Pose(*body.point(body_along * 0.85), tilt[1])
        canvas.fill(_ellipse(head_along, head_across), _Pose(*neck.point(head_along * 0.9), tilt[1]), **style(1))


def _downsample_labels(labels: np.ndarray, factor: int) -> np.ndarray:
    """Majority vote over ``factor x factor`` blocks: shape (S, S) -> (S / factor, S / factor)."""
    size = labels.shape[0] // factor
    blocks = labels.reshape(size, factor, size, factor).transpose(0, 2, 1, 3).reshape(size, size, -1)
    votes = (blocks[..., :, None] == blocks[..., None, :]).sum(-1)
    return np.take_along_axis(blocks, votes.argmax(-1)[..., None], -1)[..., 0]


def render_one(table: FactorTable, index: int = 0, *, resolution: int = 64
               ) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Render row ``index`` of a factor table.

    Returns
    -------
    image : ndarray of uint8, shape (resolution, resolution, 3)
    part_mask : ndarray of int64, shape (resolution, resolution)
    texture_mask : ndarray of int64, shape (resolution, resolution)
    """
    size = resolution * SUPERSAMPLING
    canvas = _Canvas(size, hsv_to_rgb(table.background_hsv[index]))
    _draw_object(canvas, table, index)
    rgb = canvas.rgb.reshape(resolution, SUPERSAMPLING, resolution, SUPERSAMPLING, 3).mean((1, 3))
    image = np.clip(np.round(rgb * 255), 0, 255).astype(np.uint8)
    part_mask = _downsample_labels(canvas.parts, SUPERSAMPLING)
    texture_mask = _downsample_labels(canvas.textures, SUPERSAMPLING)
    return image, part_mask, texture_mask


def render(table: FactorTable, *, resolution: int = 64) -> RenderBatch:
    """Render every row of a factor table.

    Drawing is procedural (polygon rasterisation per part), so rows are
    rendered one after another; use :func:`render_parallel` for large sets.

    Parameters
    ----------
    table : FactorTable
        ``N`` factor records.
    resolution : int
        Output side length in pixels.

    Returns
    -------
    RenderBatch
        Images of shape (N, resolution, resolution, 3) with their masks.
    """
    if resolution < 8:
        raise ValueError(f"resolution must be at least 8 pixels, got {resolution}")
    n = len(table)
    images = np.empty((n, resolution, resolution, 3), np.uint8)
    part_masks = np.empty((n, resolution, resolution), np.int64)
    texture_masks = np.empty((n, resolution, resolution), np.int64)
    for i in range(n):
        images[i], part_masks[i], texture_masks[i] = render_one(table, i, resolution=resolution)
    return RenderBatch(images=images, part_masks=part_masks, colour_masks=colour_name_mask(images),
                       texture_masks=texture_masks, factors=table)


def render_parallel(table: FactorTable, *, resolution: int = 64, n_jobs: int = 2, chunk_size: int = 512
                    ) -> RenderBatch:
    """Render a large factor table on several processes (same output as :func:`render`)."""
    if n_jobs <= 1 or len(table) <= chunk_size:
        return render(table, resolution=resolution)
    from concurrent.futures import ProcessPoolExecutor

    starts = range(0, len(table), chunk_size)
    chunks = [table[np.arange(s, min(s + chunk_size, len(table)))] for s in starts]
    with ProcessPoolExecutor(max_workers=n_jobs) as pool:
        parts = list(pool.map(_render_chunk, chunks, [resolution] * len(chunks)))
    return RenderBatch(
        images=np.concatenate([p.images for p in parts]),
        part_masks=np.concatenate([p.part_masks for p in parts]),
        colour_masks=np.concatenate([p.colour_masks for p in parts]),
        texture_masks=np.concatenate([p.texture_masks for p in parts]),
        factors=table,
    )


def _render_chunk(table: FactorTable, resolution: int) -> RenderBatch:
    return render(table, resolution=resolution)
