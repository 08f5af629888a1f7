"""A stand-in for StyleGAN-XL's ``pg_modules.discriminator``: a projected discriminator on a ``timm`` backbone,
so that this module (and the source pickled with it) imports ``timm``."""

import timm
import torch
from torch_utils import persistence


@persistence.persistent_class
class ProjectedDiscriminator(torch.nn.Module):
    def __init__(self, c_dim, backbone="tf_efficientnet_lite0"):
        super().__init__()
        self.c_dim = c_dim
        self.feature_network = timm.create_model(backbone, pretrained=False)
        self.head = torch.nn.Linear(self.feature_network.num_features, 1)
        self.embed = torch.nn.Embedding(max(c_dim, 1), self.feature_network.num_features)

    def forward(self, img, c):
        features = self.feature_network(img)
        return self.head(features) + (features * self.embed(c.argmax(dim=1))).sum(dim=1, keepdim=True)
