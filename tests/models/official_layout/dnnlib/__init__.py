"""Stand-in for the ``dnnlib`` package of the StyleGAN repositories (only what network pickles reference)."""

from dnnlib.util import EasyDict

__all__ = ["EasyDict"]
