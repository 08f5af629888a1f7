"""The Jupyter layer of linkviz (importable as ``linkviz.widgets``): thin widgets over library functions."""

from linkviz.widgets.world_browser import WorldBrowser

__all__ = ["WorldBrowser"]
