"""Small facts about torch modules that several parts of linkviz need, and the one eval-and-restore."""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import torch
from torch import nn

__all__ = ["eval_mode", "module_device"]


def module_device(module: nn.Module) -> torch.device:
    """Device of the module's first parameter or buffer (CPU for a module with neither)."""
    for tensor in (*module.parameters(), *module.buffers()):
        return tensor.device
    return torch.device("cpu")


@contextmanager
def eval_mode(module: nn.Module) -> Iterator[nn.Module]:
    """Put every submodule of ``module`` in eval mode for the block and restore each one's own mode afterwards.

    Each submodule gets back the mode it had on entry, also when some were in eval mode and others in training
    mode (e.g. frozen BatchNorm layers in a training model), and also when the block raises.

    Parameters
    ----------
    module : nn.Module
        The module; its parameters are not touched.

    Yields
    ------
    nn.Module
        ``module`` itself, in eval mode.
    """
    modes = [(submodule, submodule.training) for submodule in module.modules()]
    module.eval()
    try:
        yield module
    finally:
        # modules() lists parents before their children, so a child's own mode is set after its parent's.
        for submodule, was_training in modes:
            submodule.train(was_training)
