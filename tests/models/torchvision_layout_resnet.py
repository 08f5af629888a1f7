"""A small ResNet with torchvision's module names (``conv1``, ``bn1``, ``relu``, ``maxpool``, ``layer1`` ..
``layer4`` of BasicBlocks, ``avgpool``, ``fc``), random weights, 1000 ImageNet-style classes: the classifier factory
(``"torchvision_layout_resnet:resnet_classifier"``) that the bring-your-own notebook test passes in place of a
torchvision ResNet-50 (torchvision is not installed beside this torch)."""

from __future__ import annotations

import torch
from torch import nn


class BasicBlock(nn.Module):
    """Two 3x3 convolutions with a skip (a 1x1 projection where the shape changes)."""

    def __init__(self, in_channels: int, out_channels: int, stride: int) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(in_channels, out_channels, 3, stride=stride, padding=1, bias=False)
        self.bn1 = nn.BatchNorm2d(out_channels)
        self.relu = nn.ReLU(inplace=True)
        self.conv2 = nn.Conv2d(out_channels, out_channels, 3, padding=1, bias=False)
        self.bn2 = nn.BatchNorm2d(out_channels)
        self.downsample = None
        if stride != 1 or in_channels != out_channels:
            self.downsample = nn.Sequential(nn.Conv2d(in_channels, out_channels, 1, stride=stride, bias=False),
                                            nn.BatchNorm2d(out_channels))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        skip = x if self.downsample is None else self.downsample(x)
        return self.relu(self.bn2(self.conv2(self.relu(self.bn1(self.conv1(x))))) + skip)


class SmallResNet(nn.Module):
    """x [N, 3, 224, 224] -> logits [N, num_classes]; ``avgpool`` gives r [N, widths[-1], 1, 1]."""

    def __init__(self, num_classes: int = 1000, widths: tuple[int, int, int, int] = (8, 16, 32, 64)) -> None:
        super().__init__()
        self.conv1 = nn.Conv2d(3, widths[0], 7, stride=2, padding=3, bias=False)
        self.bn1 = nn.BatchNorm2d(widths[0])
        self.relu = nn.ReLU(inplace=True)
        self.maxpool = nn.MaxPool2d(3, stride=2, padding=1)
        channels = [widths[0], *widths]
        for index in range(4):
            stride = 1 if index == 0 else 2
            setattr(self, f"layer{index + 1}", nn.Sequential(BasicBlock(channels[index], channels[index + 1], stride)))
        self.avgpool = nn.AdaptiveAvgPool2d((1, 1))
        self.fc = nn.Linear(widths[-1], num_classes)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        x = self.maxpool(self.relu(self.bn1(self.conv1(x))))
        x = self.layer4(self.layer3(self.layer2(self.layer1(x))))
        return self.fc(torch.flatten(self.avgpool(x), 1))


def resnet_classifier(num_classes: int = 1000, seed: int = 0) -> tuple[nn.Module, list[str]]:
    """A :class:`SmallResNet` with seeded random weights and class names ``class 0`` ... ``class 999``."""
    torch.manual_seed(seed)
    return SmallResNet(num_classes).eval(), [f"class {k}" for k in range(num_classes)]
