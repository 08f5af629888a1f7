"""A tiny consistent world with hand-set weights, shared by the counterfactual and widget tests.

The generator paints channel c of an 8x8 image with tanh(w_c / 4); the classifier's 1x1 conv multiplies by 4,
so its pooled features are r = relu(4 tanh(w / 4)), a monotone function of w, and its head is the identity:
the class is argmax r. With the identity link w = r, classifying a rendered r' agrees with argmax r'.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch
from torch import Tensor, nn

from linkviz.linking import LinearLink
from linkviz.models import Classifier, ClassifierSpec

D = 3
RESOLUTION = 8
CLASS_NAMES = ("red", "green", "blue")


class FakeGenerator:
    """Unconditional; w = offset + psi z; synthesis = tanh(linear(ws[:, 0])) as [N, 3, 8, 8]; counts its passes."""

    num_ws = 2
    w_dim = D
    z_dim = D
    c_dim = 0
    img_resolution = RESOLUTION

    def __init__(self, *, offset: float = 0.0) -> None:
        self.offset = offset
        self.module = nn.Linear(D, 3 * RESOLUTION * RESOLUTION, bias=False)
        with torch.no_grad():
            self.module.weight.copy_(torch.eye(3).repeat_interleave(RESOLUTION * RESOLUTION, dim=0) / 4)
        self.calls = 0

    @property
    def synthesis_module(self) -> nn.Module:
        return self.module

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        return (self.offset + truncation_psi * z)[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: Tensor) -> Tensor:
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        assert torch.equal(ws[:, 0], ws[:, -1]), "w must be tiled to all num_ws"
        self.calls += 1
        return torch.tanh(self.module(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


class FakeClassifierNet(nn.Module):
    """1x1 conv (x4) -> ReLU -> global average pool (``pool``) -> identity linear head (``fc``)."""

    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, D, kernel_size=1)
        self.relu = nn.ReLU()
        self.pool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(D, 3)
        with torch.no_grad():
            self.conv.weight.copy_(4 * torch.eye(3)[:, :, None, None])
            self.conv.bias.zero_()
            self.fc.weight.copy_(torch.eye(3))
            self.fc.bias.zero_()

    def forward(self, x: Tensor) -> Tensor:
        return self.fc(torch.flatten(self.pool(self.relu(self.conv(x))), 1))


def fake_classifier() -> Classifier:
    """The fake classifier with its spec (8x8 RGB in [-1, 1], penultimate ``pool``, head ``fc``)."""
    spec = ClassifierSpec(input_size=(RESOLUTION, RESOLUTION), in_channels=3, value_range=(0, 1), mean=(0.5,) * 3,
                          std=(0.5,) * 3, resize_to=None, penultimate_layer="pool", class_names=CLASS_NAMES,
                          head_layer="fc", penultimate_range=(0.0, None))
    return Classifier(FakeClassifierNet(), spec)


def identity_link() -> LinearLink:
    """The exact link of the fake world, ``w = r`` (counterfactuals succeed)."""
    return LinearLink(weight=np.eye(D, dtype=np.float32), bias=np.zeros(D, dtype=np.float32))


@dataclass(frozen=True)
class FakeWorld:
    """The fake world as a :class:`linkviz.world.World`: unconditional, no ground truth."""

    classifier: Classifier
    generator: FakeGenerator

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES
