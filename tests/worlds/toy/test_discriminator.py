"""The patch discriminator that sharpens the toy generator: losses, shapes, and that it learns to see blur."""

import numpy as np
import pytest
import torch
from scipy.ndimage import gaussian_filter
from single_thread import single_thread  # noqa: F401

from linkviz.worlds.toy.discriminator import PatchDiscriminator, discriminator_hinge_loss, generator_hinge_loss


def test_hinge_losses_on_known_logits():
    confident_real, confident_fake = torch.full((2, 1, 4, 4), 2.0), torch.full((2, 1, 4, 4), -2.0)
    assert discriminator_hinge_loss(confident_real, confident_fake).item() == 0.0
    undecided = torch.zeros(2, 1, 4, 4)
    assert discriminator_hinge_loss(undecided, undecided).item() == pytest.approx(2.0)
    assert generator_hinge_loss(confident_fake).item() == pytest.approx(2.0)


def test_logit_map_shape():
    logits = PatchDiscriminator()(torch.zeros(3, 3, 64, 64))
    assert logits.shape == (3, 1, 8, 8)


def squares(n: int, *, seed: int, blur: float) -> torch.Tensor:
    """Random axis-aligned two-colour squares on 32 x 32 images in [-1, 1], optionally blurred."""
    rng = np.random.default_rng(seed)
    images = np.empty((n, 3, 32, 32), np.float32)
    for i in range(n):
        images[i] = rng.uniform(-1, 1, (3, 1, 1))
        top, left = rng.integers(4, 14, 2)
        images[i, :, top:top + 14, left:left + 14] = rng.uniform(-1, 1, (3, 1, 1))
    if blur:
        images = gaussian_filter(images, sigma=(0, 0, blur, blur))
    return torch.from_numpy(images)


def test_discriminator_learns_to_tell_sharp_edges_from_blurred_ones():
    torch.manual_seed(0)
    discriminator = PatchDiscriminator((16, 32))
    optimiser = torch.optim.Adam(discriminator.parameters(), lr=2e-3, betas=(0.0, 0.99))
    for step in range(150):
        loss = discriminator_hinge_loss(discriminator(squares(16, seed=step, blur=0)),
                                        discriminator(squares(16, seed=step, blur=1.0)))
        optimiser.zero_grad()
        loss.backward()
        optimiser.step()
    with torch.no_grad():
        sharp = discriminator(squares(64, seed=999, blur=0)).mean((1, 2, 3))
        blurred = discriminator(squares(64, seed=999, blur=1.0)).mean((1, 2, 3))
    assert (sharp > blurred).float().mean() > 0.9


def test_adversarial_weight_changes_the_generator_update():
    from linkviz.worlds.toy.classifier_net import ToyResNet
    from linkviz.worlds.toy.dataset import render_set
    from linkviz.worlds.toy.training import train_generator

    renders = render_set(2, seed=0, n_jobs=1)
    kwargs = {"steps": 2, "batch_size": 2, "seed": 1, "progress": False, "ema_decay": 0.0}
    torch.manual_seed(0)
    classifier = ToyResNet().eval()
    plain = train_generator(renders, classifier, **kwargs)
    adversarial = train_generator(renders, classifier, adversarial_weight=1.0, **kwargs)
    again = train_generator(renders, classifier, adversarial_weight=1.0, **kwargs)
    weight = "synthesis.torgb.weight"
    assert not torch.allclose(plain.state_dict()[weight], adversarial.state_dict()[weight])
    torch.testing.assert_close(adversarial.state_dict()[weight], again.state_dict()[weight])
