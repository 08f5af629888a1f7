"""A stand-in for ``training.augment.AugmentPipe`` (the snapshot's ``augment_pipe``): a persistent module holding
the augmentation probability ``p``."""

import torch
from torch_utils import persistence


@persistence.persistent_class
class AugmentPipe(torch.nn.Module):
    def __init__(self, xflip=1, rotate90=1):
        super().__init__()
        self.register_buffer("p", torch.zeros([]))
        self.xflip, self.rotate90 = float(xflip), float(rotate90)

    def forward(self, images):
        return images
