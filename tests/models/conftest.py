"""Tiny models with hand-set weights for the model-layer tests."""

import sys
from pathlib import Path

import pytest
import torch
from torch import nn

# tiny_stylegan.py must be importable under a stable name for pickling, whatever pytest's import mode.
_HERE = str(Path(__file__).resolve().parent)
if _HERE not in sys.path:
    sys.path.insert(0, _HERE)


@pytest.fixture
def tiny_mlp() -> nn.Sequential:
    """x [N, 2] -> Linear(2, 3) -> ReLU -> Linear(3, 2).

    First layer: h = relu([x0, x1, x0 + x1] + [0, 0, 1]); second: logits = [h0 + h2, h1 - h2].
    """
    model = nn.Sequential(nn.Linear(2, 3), nn.ReLU(), nn.Linear(3, 2))
    with torch.no_grad():
        model[0].weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, 1.0]]))
        model[0].bias.copy_(torch.tensor([0.0, 0.0, 1.0]))
        model[2].weight.copy_(torch.tensor([[1.0, 0.0, 1.0], [0.0, 1.0, -1.0]]))
        model[2].bias.zero_()
    return model.eval()


class _Block(nn.Module):
    def __init__(self) -> None:
        super().__init__()
        self.conv = nn.Conv2d(3, 2, kernel_size=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return torch.relu(self.conv(x))


class TinyCNN(nn.Module):
    """x [N, 3, H, W] -> layer1.0.conv (1x1, 2 ch) -> ReLU -> avgpool [N, 2, 1, 1] -> fc -> logits [N, 3]."""

    def __init__(self) -> None:
        super().__init__()
        self.layer1 = nn.Sequential(_Block())
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(2, 3)
        with torch.no_grad():
            self.layer1[0].conv.weight.copy_(torch.tensor([[1.0, 0.0, 0.0], [0.0, 1.0, 1.0]])[:, :, None, None])
            self.layer1[0].conv.bias.copy_(torch.tensor([0.5, 0.0]))
            self.fc.weight.copy_(torch.tensor([[1.0, 0.0], [0.0, 1.0], [1.0, -1.0]]))
            self.fc.bias.copy_(torch.tensor([0.0, 0.1, 0.2]))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.fc(torch.flatten(self.avgpool(self.layer1(x)), 1))


@pytest.fixture
def tiny_cnn() -> TinyCNN:
    return TinyCNN().eval()


def _assert_no_hooks(model: nn.Module) -> None:
    for name, module in model.named_modules():
        assert not module._forward_hooks, f"hook leaked on {name!r}"
        assert not module._forward_pre_hooks, f"pre-hook leaked on {name!r}"


@pytest.fixture
def assert_no_hooks():
    """Function asserting that no module of a model has forward hooks left."""
    return _assert_no_hooks
