"""Static snapshots of live widgets, so an executed and exported notebook still shows their state."""

from __future__ import annotations

import base64

import ipywidgets as ipw

__all__ = ["snapshot_html", "with_snapshot"]


def snapshot_html(image: ipw.Image, *parts: str) -> str:
    """The image's current bytes as an inline ``<img>``, then each HTML part in its own ``<div>``."""
    encoded = base64.b64encode(image.value).decode("ascii")
    return f'<img src="data:image/{image.format};base64,{encoded}"/>' + "".join(f"<div>{p}</div>" for p in parts)


def with_snapshot(bundle: dict | None, image: ipw.Image, *parts: str) -> dict:
    """Add a ``text/html`` snapshot (the current image, then each HTML part) to a widget's mimebundle.

    Parameters
    ----------
    bundle : dict or None
        The live widget's own mimebundle.
    image : ipywidgets.Image
        The image whose bytes are embedded.
    *parts : str
        HTML fragments shown below the image, each in its own ``<div>``.
    """
    return {**(bundle or {}), "text/html": snapshot_html(image, *parts)}
