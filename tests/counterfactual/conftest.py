"""A tiny consistent world with hand-set weights: link = identity, images encode w, the classifier reads it back.

w = r (identity link); the generator paints channel c of an 8x8 image with tanh(w_c / 4); the classifier's
1x1 conv multiplies by 4, so its pooled features are r_img = relu(4 tanh(w / 4)), a monotone function of w, and
its head is the identity: the class is argmax r. Classifying a rendered r' therefore agrees with argmax r'.
"""

from __future__ import annotations

import pytest
import torch
from fake_world import FakeGenerator, fake_classifier, identity_link
from torch import Tensor

from linkviz.linking.link import LinearLink
from linkviz.models import Classifier


@pytest.fixture
def world() -> tuple[LinearLink, FakeGenerator, Classifier]:
    return identity_link(), FakeGenerator(), fake_classifier()


@pytest.fixture
def examples() -> tuple[Tensor, Tensor, Tensor]:
    """r [4, 3] with origins argmax r and targets elsewhere."""
    r = torch.tensor([[3.0, 1.5, 1.2], [1.4, 3.2, 1.3], [1.3, 1.5, 2.8], [2.9, 1.2, 1.6]])
    return r, r.argmax(dim=1), torch.tensor([1, 2, 0, 2])
