"""The toy world's classifier: a small ResNet with the ResNet-50 layout in miniature.

conv1 -> bn1 -> relu -> layer1..layer4 (basic residual blocks) -> avgpool -> fc.
``avgpool`` outputs the penultimate representation r: 256 post-ReLU units,
globally averaged over the last conv layer's 8 x 8 maps, as in the reference's
ResNet-50 (where r has 2048 units).
"""

from __future__ import annotations

import torch
from torch import nn

from .factors import CLASS_NAMES

CHANNELS: tuple[int, ...] = (32, 64, 128, 256)
STRIDES: tuple[int, ...] = (1, 2, 2, 1)


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with batch norm and an identity (or 1x1) shortcut."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU()
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, 1, 1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample: nn.Module = nn.Identity()
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.relu(self.bn1(self.conv1(x)))
        return self.relu(self.bn2(self.conv2(out)) + self.downsample(x))


class ToyResNet(nn.Module):
    """Small ResNet for 64 x 64 RGB inputs normalised to about [-1, 1].

    Parameters
    ----------
    num_classes : int
        Width of the final linear layer.
    """

    def __init__(self, num_classes: int = len(CLASS_NAMES)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, 32, 3, 2, 1, bias=False)
        self.bn1 = nn.BatchNorm2d(32)
        self.relu = nn.ReLU()
        blocks, in_channels = [], 32
        for out_channels, stride in zip(CHANNELS, STRIDES):
            blocks.append(BasicBlock(in_channels, out_channels, stride))
            in_channels = out_channels
        self.layer1, self.layer2, self.layer3, self.layer4 = blocks
        self.avgpool = nn.AdaptiveAvgPool2d(1)
        self.fc = nn.Linear(in_channels, num_classes)

    def stages(self) -> list[nn.Module]:
        """The stem and the four residual stages, in order."""
        return [nn.Sequential(self.conv1, self.bn1, self.relu), self.layer1, self.layer2, self.layer3, self.layer4]

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        """Logits, shape (N, num_classes), from images of shape (N, 3, 64, 64)."""
        for stage in self.stages():
            x = stage(x)
        return self.fc(torch.flatten(self.avgpool(x), 1))
