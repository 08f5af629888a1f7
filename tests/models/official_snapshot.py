"""Network pickles laid out as the StyleGAN training loops write them, built with ``official_layout/`` (a stand-in
for a StyleGAN repository; see its README) for the pickle-loading and bring-your-own tests."""

from __future__ import annotations

import contextlib
import copy
import pickle
import sys
import types
from collections.abc import Iterator
from pathlib import Path

import torch
from torch import nn

LAYOUT = Path(__file__).resolve().parent / "official_layout"
#: Top-level modules of the stand-in repository (and the fake timm), taken out of sys.modules after use.
TOP_LEVEL = ("dnnlib", "torch_utils", "training", "pg_modules", "timm")


def _forget_modules() -> None:
    for name in list(sys.modules):
        if name.split(".")[0] in TOP_LEVEL or name.startswith("_imported_module_"):
            del sys.modules[name]


@contextlib.contextmanager
def layout_on_path() -> Iterator[Path]:
    """The stand-in repository on ``sys.path`` (as a user puts StyleGAN's there); its modules are forgotten after."""
    sys.path.insert(0, str(LAYOUT))
    try:
        yield LAYOUT
    finally:
        sys.path.remove(str(LAYOUT))
        _forget_modules()


class FakeBackbone(nn.Module):
    """Stands in for a timm EfficientNet: image [N, 3, H, W] -> features [N, num_features]."""

    def __init__(self, num_features: int = 8) -> None:
        super().__init__()
        self.num_features = num_features
        self.conv_stem = nn.Conv2d(3, num_features, 3, stride=2, padding=1)

    def forward(self, images: torch.Tensor) -> torch.Tensor:
        return self.conv_stem(images).mean(dim=(2, 3))


@contextlib.contextmanager
def fake_timm() -> Iterator[types.ModuleType]:
    """A module ``timm`` with ``create_model`` (its models live in ``timm.models.efficientnet``, so they pickle by
    reference to timm, as real timm models do); taken out of sys.modules after."""
    timm, models, efficientnet = (types.ModuleType(n) for n in ("timm", "timm.models", "timm.models.efficientnet"))
    backbone = type("EfficientNet", (FakeBackbone,), {"__module__": "timm.models.efficientnet"})
    efficientnet.EfficientNet = backbone
    timm.models, models.efficientnet = models, efficientnet
    timm.create_model = lambda name, pretrained=False: backbone()
    sys.modules.update({"timm": timm, "timm.models": models, "timm.models.efficientnet": efficientnet})
    try:
        yield timm
    finally:
        for name in ("timm", "timm.models", "timm.models.efficientnet"):
            sys.modules.pop(name, None)


def write_snapshot(path: Path, *, c_dim: int = 10, resolution: int = 32, seed: int = 0) -> nn.Module:
    """Write ``{G, D, G_ema, augment_pipe, training_set_kwargs}`` to ``path`` as the training loop does (each network
    deep-copied, in eval mode, without gradients, on the CPU); D is StyleGAN-XL's, on (fake) timm.

    Returns
    -------
    nn.Module
        The generator that was pickled as ``G_ema`` (its classes come from the stand-in repository).
    """
    with layout_on_path(), fake_timm():
        import dnnlib
        from pg_modules.discriminator import ProjectedDiscriminator
        from training.augment import AugmentPipe
        from training.networks_stylegan2 import Generator

        torch.manual_seed(seed)
        G = Generator(z_dim=16, c_dim=c_dim, w_dim=16, img_resolution=resolution, img_channels=3,
                      mapping_kwargs={"num_layers": 2}, synthesis_kwargs={"channel_base": 256, "channel_max": 16})
        with torch.no_grad():  # a trained generator's w_avg is the running mean of its ws
            c = torch.eye(max(c_dim, 1))[torch.arange(64) % max(c_dim, 1)][:, :c_dim]
            for _ in range(200):
                G.mapping(torch.randn(64, 16), c, update_emas=True)
        networks = {"G": G, "D": ProjectedDiscriminator(c_dim=c_dim), "G_ema": copy.deepcopy(G),
                    "augment_pipe": AugmentPipe()}
        snapshot = {"training_set_kwargs": dnnlib.EasyDict(class_name="training.dataset.ImageFolderDataset",
                                                           path="datasets/stand-in.zip", use_labels=c_dim > 0,
                                                           resolution=resolution, xflip=False)}
        for name, module in networks.items():
            snapshot[name] = copy.deepcopy(module).eval().requires_grad_(False).cpu()
        with path.open("wb") as file:
            pickle.dump(snapshot, file)
        return networks["G_ema"].eval()
