"""A tiny hand-set world for the widget tests: identity-like models on 8 x 8 images, milliseconds per pass.

The generator paints channel c with tanh(w_c / 4); the classifier's features are r = relu(4 tanh(w / 4)) and its
head is the identity, so the class is argmax r (the world of tests/counterfactual/conftest.py, unconditional).
"""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

import numpy as np
import pytest
import torch
from torch import Tensor, nn

from linkviz.linking import LinearLink, LinkedModel, build_linked_model
from linkviz.models import Classifier, ClassifierSpec

D = 3
RESOLUTION = 8
CLASS_NAMES = ("red", "green", "blue")


class FakeGenerator:
    """Unconditional; w = 2 + psi z; synthesis = tanh(linear(ws[:, 0])) as [N, 3, 8, 8]; counts its synthesis passes."""

    num_ws = 2
    w_dim = D
    z_dim = D
    c_dim = 0
    img_resolution = RESOLUTION

    def __init__(self) -> None:
        self.module = nn.Linear(D, 3 * RESOLUTION * RESOLUTION, bias=False)
        with torch.no_grad():
            self.module.weight.copy_(torch.eye(3).repeat_interleave(RESOLUTION * RESOLUTION, dim=0) / 4)
        self.calls = 0

    @property
    def synthesis_module(self) -> nn.Module:
        return self.module

    def mapping(self, z: Tensor, c: Tensor | None = None, truncation_psi: float = 1.0) -> Tensor:
        # centred at 2, so every unit of r is active and counterfactuals can raise any class
        return (2.0 + truncation_psi * z)[:, None, :].expand(-1, self.num_ws, -1)

    def synthesis(self, ws: Tensor) -> Tensor:
        assert ws.shape[1:] == (self.num_ws, self.w_dim)
        assert torch.equal(ws[:, 0], ws[:, -1]), "w must be tiled to all num_ws"
        self.calls += 1
        return torch.tanh(self.module(ws[:, 0])).reshape(-1, 3, RESOLUTION, RESOLUTION)


class FakeClassifierNet(nn.Module):
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


@dataclass(frozen=True)
class FakeWorld:
    classifier: Classifier
    generator: FakeGenerator

    @property
    def class_names(self) -> tuple[str, ...]:
        return CLASS_NAMES


@pytest.fixture
def fake_world() -> FakeWorld:
    spec = ClassifierSpec(input_size=(RESOLUTION, RESOLUTION), in_channels=3, value_range=(0, 1), mean=(0.5,) * 3,
                          std=(0.5,) * 3, resize_to=None, penultimate_layer="pool", class_names=CLASS_NAMES,
                          head_layer="fc")
    return FakeWorld(classifier=Classifier(FakeClassifierNet(), spec), generator=FakeGenerator())


@pytest.fixture
def linked(fake_world) -> LinkedModel:
    """The fake world with a ridge link fitted on 24 pairs."""
    return build_linked_model(fake_world, samples_per_class=8, truncation_psi=1.0, seed=0)


@pytest.fixture
def identity_linked(linked) -> LinkedModel:
    """The same base pairs with the exact link w = r of the fake world (counterfactuals succeed)."""
    identity = LinearLink(weight=np.eye(D, dtype=np.float32), bias=np.zeros(D, dtype=np.float32))
    return dataclasses.replace(linked, link=identity)

