"""Counterfactuals rendered through a :class:`~linkviz.linking.RefinedLink`: search with the linear link, then show
and judge the images that feature inversion makes of the original and of the counterfactual r.

Where the linear link is only a first guess of the latent (the faces DCGAN and FER, where its held-out class
agreement is at the majority-class level), the images it renders for ``r`` and ``r'`` say little about what the
classifier sees. The search itself needs gradients in r, so it runs through the linear link
(:func:`~linkviz.counterfactual.find_counterfactuals`); this module then renders

- the original: ``w0 = refined(r)``, feature inversion from the linear link's latent, and
- the counterfactual: ``w1 = refined(r', start=w0)``, feature inversion started from the original's latent, so the
  image keeps the original's face, pose and light and changes what the shift asks for,

classifies both images and re-judges every example: a success needs the classifier to call the *inverted*
counterfactual image the target class (its top class: a ``target_probability`` the search went on to is a way to
reach a clear case, not part of the verdict) and, with a realism model, its latent to lie within the threshold.
Every example is judged, also one whose linear search ran out of steps: the verdict is on the image.

Measured on the faces world (quickstart link, 32 held-out neutral faces of seed 9, neutral -> happy, realism
constraint): the search succeeds in 32/32 through the linear link; through inversion, 20/32 images are called happy
with 40 inversion steps, 23/32 with 100, 29/32 with 100 when the search goes on to p(happy) >= 0.9
(``target_probability=0.9``) and 32/32 when it goes on to 0.99, every latent within the realism threshold. On 16
of them, 40 steps without the warm start call 13 happy but change the face too; with it the face, pose and light
stay. The smiles show as raised
mouth corners and open smiles, without the linear link's darkening of the whole face.
"""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import torch

from linkviz.counterfactual.optimise import classify_latents
from linkviz.counterfactual.realism import LatentRealism
from linkviz.counterfactual.result import CounterfactualResult
from linkviz.counterfactual.trajectory import Trajectory, path_pca
from linkviz.images import to_uint8
from linkviz.linking.refine import RefinedLink
from linkviz.models.classifier import Classifier
from linkviz.models.generator import Generator

__all__ = ["render_through_refined_link"]


def _render(generator: Generator, classifier: Classifier, w: np.ndarray, batch_size: int
            ) -> tuple[np.ndarray, np.ndarray]:
    """Images ``[M, 3, H, W]`` in [-1, 1] and class probabilities ``[M, K]`` of latents ``w [M, w_dim]``."""
    latents = torch.as_tensor(w, device=classifier.device)
    parts = [classify_latents(generator, classifier, part, keep_images=True) for part in latents.split(batch_size)]
    logits, images = (torch.cat(column) for column in zip(*parts))
    return images.numpy(), logits.softmax(dim=1).numpy()


def render_through_refined_link(
    result: CounterfactualResult,
    link: RefinedLink,
    generator: Generator,
    classifier: Classifier,
    r: np.ndarray,
    *,
    realism: LatentRealism | None = None,
    batch_size: int = 64,
) -> tuple[CounterfactualResult, Trajectory]:
    """Render the originals and counterfactuals of ``result`` by feature inversion and judge them again.

    Parameters
    ----------
    result : CounterfactualResult
        A search through ``link.link`` (the linear link the refined link starts from) for the rows ``r``.
    link : RefinedLink
        Renders ``r`` and ``r'`` (the counterfactual from the original's refined latent).
    generator, classifier : Generator, Classifier
        Those of the search.
    r : ndarray of float32, shape (N, D)
        The original activations the search started from.
    realism : LatentRealism, optional
        Scores the inverted latents; given, a success also needs the counterfactual's latent within its threshold.
    batch_size : int
        Latents per generator and classifier pass.

    Returns
    -------
    result : CounterfactualResult
        ``result`` with ``success``, ``predicted``, ``target_probability`` and ``latent_distance`` of the inverted
        counterfactual images (``shift``, ``r_counterfactual`` and ``steps`` unchanged).
    path : Trajectory
        Two points per example, ``alpha = 0`` (the inverted original) and ``1`` (the inverted counterfactual),
        with their images, latents, probabilities and realism scores.

    Raises
    ------
    ValueError
        If ``r`` does not match the result's rows, or ``realism`` models latents of another size.
    """
    r = np.asarray(r, dtype=np.float32)
    if r.shape != result.r_counterfactual.shape:
        raise ValueError(f"r must be the search's originals, shape {result.r_counterfactual.shape}; got {r.shape}")
    if realism is not None and realism.w_dim != link.w_dim:
        raise ValueError(f"realism models latents of size {realism.w_dim} but the link makes w of size {link.w_dim}")
    w_original = link.predict(r)
    w_counterfactual = link.predict(result.r_counterfactual, start=w_original)
    w = np.stack([w_original, w_counterfactual], axis=1)  # [N, 2, w_dim]
    images, probabilities = _render(generator, classifier, w.reshape(-1, link.w_dim), batch_size)
    n_examples = len(r)
    images = images.reshape(n_examples, 2, *images.shape[1:])
    probabilities = probabilities.reshape(n_examples, 2, -1)
    distance = None if realism is None else realism.distance(w)  # [N, 2]
    predicted = probabilities[:, 1].argmax(axis=1)
    success = predicted == result.target
    if distance is not None:
        success &= distance[:, 1] <= realism.threshold
    judged = replace(result, success=success, predicted=predicted,
                     target_probability=probabilities[np.arange(n_examples), 1, result.target].astype(np.float32),
                     latent_distance=None if distance is None else distance[:, 1],
                     realism_threshold=None if realism is None else float(realism.threshold))
    r_path = np.stack([r, result.r_counterfactual], axis=1)
    path = Trajectory(alphas=np.array([0.0, 1.0]), r=r_path, w=w.astype(np.float32), images=to_uint8(images),
                      probabilities=probabilities.astype(np.float32), r_pca=path_pca(r_path), w_pca=path_pca(w),
                      class_names=tuple(classifier.spec.class_names), latent_distance=distance,
                      realism_threshold=None if realism is None else float(realism.threshold))
    return judged, path
