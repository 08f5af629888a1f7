"""The path from an original to its counterfactual: ``r(alpha) = clip(r - alpha * s)``, rendered and classified.

``clip`` is the classifier's declared ``penultimate_range`` (:meth:`ClassifierSpec.clip_penultimate`): ``relu``
after a ReLU, nothing for signed features."""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd
import torch
from sklearn.decomposition import PCA
from torch import Tensor

from linkviz.counterfactual.optimise import check_activations, render_and_classify
from linkviz.counterfactual.realism import LatentRealism
from linkviz.images import to_uint8
from linkviz.linking.link import LinearLink
from linkviz.models.classifier import Classifier
from linkviz.models.generator import Generator

__all__ = ["Trajectory", "counterfactual_trajectory", "path_pca", "refined_trajectory", "top_shifted_units",
           "unit_frequency"]


@dataclass(frozen=True, eq=False)
class Trajectory:
    """Rendered and classified points along ``clip(r - alpha * s)`` for N examples and A values of alpha.

    Attributes
    ----------
    alphas : ndarray of float, shape (A,)
    r : ndarray of float32, shape (N, A, D)
        Activations along the path.
    w : ndarray of float32, shape (N, A, w_dim)
        Linked latents along the path.
    images : ndarray of uint8, shape (N, A, H, W, 3)
        Rendered images (channels last, as :func:`linkviz.images.to_uint8` gives).
    probabilities : ndarray of float32, shape (N, A, K)
        Class probabilities of the rendered images.
    r_pca, w_pca : ndarray of float32, shape (N, A, 2)
        The paths projected on the first two principal components of all path points (see :func:`path_pca`).
    class_names : tuple of str
    latent_distance : ndarray of float, shape (N, A), or None
        Off-manifold score of each point: the Mahalanobis distance of its linked latent from the generator's
        latents (:class:`~linkviz.counterfactual.LatentRealism`); None when the path was not scored.
    realism_threshold : float or None
        Distances above it are off the generator's realistic range.
    """

    alphas: np.ndarray
    r: np.ndarray
    w: np.ndarray
    images: np.ndarray
    probabilities: np.ndarray
    r_pca: np.ndarray
    w_pca: np.ndarray
    class_names: tuple[str, ...] = ()
    latent_distance: np.ndarray | None = None
    realism_threshold: float | None = None

    @property
    def predicted(self) -> np.ndarray:
        """Predicted class along the path, int of shape (N, A)."""
        return self.probabilities.argmax(axis=-1)

    @property
    def realistic(self) -> np.ndarray | None:
        """Points whose latent lies within the realism threshold, bool of shape (N, A); None if unscored."""
        if self.latent_distance is None or self.realism_threshold is None:
            return None
        return self.latent_distance <= self.realism_threshold

    def to_frame(self) -> pd.DataFrame:
        """Tidy table, one row per (example, step, class): ``example, step, alpha, class, class_name,
        probability, predicted, latent_distance, realistic`` (``predicted`` is the argmax class at that step;
        ``latent_distance`` the point's off-manifold score and ``realistic`` whether it lies within the
        threshold, NaN and missing for an unscored path)."""
        n_examples, n_alphas, n_classes = self.probabilities.shape
        example, step, label = np.meshgrid(np.arange(n_examples), np.arange(n_alphas), np.arange(n_classes),
                                           indexing="ij")
        names = np.asarray(self.class_names or [str(k) for k in range(n_classes)], dtype=object)
        distance = (np.full((n_examples, n_alphas), np.nan) if self.latent_distance is None
                    else np.asarray(self.latent_distance, dtype=np.float64))
        realistic = self.realistic
        return pd.DataFrame({
            "example": example.ravel(), "step": step.ravel(), "alpha": self.alphas[step.ravel()],
            "class": label.ravel(), "class_name": names[label.ravel()], "probability": self.probabilities.ravel(),
            "predicted": np.broadcast_to(self.predicted[:, :, None], example.shape).ravel(),
            "latent_distance": np.broadcast_to(distance[:, :, None], example.shape).ravel(),
            "realistic": pd.array([None] * example.size if realistic is None else
                                  np.broadcast_to(realistic[:, :, None], example.shape).ravel(), dtype="boolean"),
        })


def path_pca(points: np.ndarray, *, n_components: int = 2) -> np.ndarray:
    """Project paths on the principal components of all their points.

    Parameters
    ----------
    points : ndarray, shape (N, A, F)
        N paths of A points in F dimensions.
    n_components : int
        Components kept.

    Returns
    -------
    ndarray of float32, shape (N, A, n_components)
        Coordinates; components beyond the data's rank (e.g. a single point) are zero.
    """
    points = np.asarray(points, dtype=np.float64)
    if points.ndim != 3:
        raise ValueError(f"points must have shape (N, A, F); got {points.shape}")
    n_examples, n_alphas, n_features = points.shape
    flat = points.reshape(-1, n_features)
    out = np.zeros((flat.shape[0], n_components), dtype=np.float32)
    usable = min(n_components, flat.shape[0] - 1, n_features)
    if usable > 0 and np.ptp(flat, axis=0).any():  # a path that does not move has no components
        out[:, :usable] = PCA(n_components=usable, svd_solver="full").fit_transform(flat)
    return out.reshape(n_examples, n_alphas, n_components)


def counterfactual_trajectory(
    link: LinearLink,
    generator: Generator,
    classifier: Classifier,
    r: Tensor | np.ndarray,
    s: Tensor | np.ndarray,
    *,
    alphas: np.ndarray | None = None,
    batch_size: int = 64,
    realism: LatentRealism | None = None,
    device: torch.device | str = "cpu",
) -> Trajectory:
    """Render and classify ``clip(r - alpha * s)`` for each alpha.

    Parameters
    ----------
    link : LinearLink
        The link ``w = A r + b``.
    generator : Generator
        Renders linked latents (tiled to all ``num_ws``); must live on ``device``.
    classifier : Classifier
        Classifies the rendered images.
    r : Tensor or ndarray, shape [N, D]
        Original activations.
    s : Tensor or ndarray, shape [N, D]
        Shifts, e.g. :attr:`CounterfactualResult.shift`.
    alphas : array of float, shape [A], optional
        Points along the path; default ``linspace(0, 1, 5)``. Values above 1 extrapolate past the counterfactual.
    batch_size : int
        Images per generator and classifier pass.
    realism : LatentRealism, optional
        Scores each point's linked latent (:attr:`Trajectory.latent_distance`).
    device : torch.device or str
        Where latents are built and the generator runs.

    Returns
    -------
    Trajectory
    """
    r, s = _check_path(link, r, s, device)
    alphas = np.linspace(0.0, 1.0, 5) if alphas is None else np.asarray(alphas, dtype=np.float64)
    if alphas.ndim != 1 or alphas.size == 0 or not np.isfinite(alphas).all():
        raise ValueError(f"alphas must be a non-empty 1-d array of finite values; got {alphas!r}")
    path, logits, images = _render_path(link, generator, classifier, r, s, alphas, batch_size=batch_size)
    return _trajectory(link, classifier, alphas, path, logits, images, realism)


def refined_trajectory(
    link: LinearLink,
    generator: Generator,
    classifier: Classifier,
    r: Tensor | np.ndarray,
    s: Tensor | np.ndarray,
    *,
    n_alphas: int = 13,
    n_uniform: int | None = None,
    length_weight: float = 0.5,
    min_spacing: float = 1.0 / 256,
    batch_size: int = 64,
    realism: LatentRealism | None = None,
    device: torch.device | str = "cpu",
) -> Trajectory:
    """The path ``clip(r - alpha * s)`` at ``n_alphas`` points of [0, 1], packed where the class probabilities change.

    Along a counterfactual the class often flips within a small stretch of alpha (on the toy world typically
    between 0.1 and 0.25), so evenly spaced points jump from the original to the counterfactual in one step.
    This starts from ``n_uniform`` evenly spaced points and then bisects, one at a time, the interval with the
    largest ``jump + length_weight * width``, where ``jump`` is the total-variation distance
    ``0.5 * sum_k |p_k(a) - p_k(b)|`` between the class probabilities at the interval's ends (the largest over
    the examples) and ``width = b - a``. Every point is rendered once, so the cost is that of
    :func:`counterfactual_trajectory` at ``n_alphas`` points.

    Parameters
    ----------
    link, generator, classifier, r, s, batch_size, realism, device
        As in :func:`counterfactual_trajectory`; ``r`` and ``s`` have shape [N, D].
    n_alphas : int
        Points of the path, at least 2 (fewer only if every interval is narrower than ``2 * min_spacing``).
    n_uniform : int, optional
        Evenly spaced starting points, ``2 <= n_uniform <= n_alphas``; default ``max(2, (n_alphas + 1) // 2)``.
    length_weight : float
        Weight of an interval's width against its probability jump (0: only the jumps count).
    min_spacing : float
        Intervals narrower than twice this are not split.

    Returns
    -------
    Trajectory
        With ``alphas`` ascending from 0 to 1.
    """
    r, s = _check_path(link, r, s, device)
    n_uniform = max(2, (n_alphas + 1) // 2) if n_uniform is None else int(n_uniform)
    if not 2 <= n_uniform <= n_alphas or length_weight < 0 or min_spacing <= 0:
        raise ValueError(f"need 2 <= n_uniform <= n_alphas, length_weight >= 0 and min_spacing > 0; got "
                         f"n_uniform={n_uniform}, n_alphas={n_alphas}, length_weight={length_weight}, "
                         f"min_spacing={min_spacing}")
    alphas = np.linspace(0.0, 1.0, n_uniform)
    path, logits, images = _render_path(link, generator, classifier, r, s, alphas, batch_size=batch_size)
    while len(alphas) < n_alphas:
        probabilities = logits.softmax(dim=-1).numpy()  # [N, A, K], alphas ascending
        jump = 0.5 * np.abs(np.diff(probabilities, axis=1)).sum(axis=-1).max(axis=0)  # [A - 1]
        width = np.diff(alphas)
        score = np.where(width >= 2 * min_spacing, jump + length_weight * width, -np.inf)
        if not np.isfinite(score).any():
            break
        split = int(np.argmax(score))
        middle = np.array([(alphas[split] + alphas[split + 1]) / 2])
        new = _render_path(link, generator, classifier, r, s, middle, batch_size=batch_size)
        alphas = np.insert(alphas, split + 1, middle)
        path, logits, images = (torch.cat([old[:, :split + 1], part, old[:, split + 1:]], dim=1)
                                for old, part in zip((path, logits, images), new))
    return _trajectory(link, classifier, alphas, path, logits, images, realism)


def _check_path(link: LinearLink, r: Tensor | np.ndarray, s: Tensor | np.ndarray,
                device: torch.device | str) -> tuple[Tensor, Tensor]:
    r = check_activations(r, link, device)
    s = check_activations(s, link, device)
    if s.shape != r.shape:
        raise ValueError(f"s must have the shape of r {list(r.shape)}; got {list(s.shape)}")
    return r, s


def _render_path(link: LinearLink, generator: Generator, classifier: Classifier, r: Tensor, s: Tensor,
                 alphas: np.ndarray, *, batch_size: int) -> tuple[Tensor, Tensor, Tensor]:
    """``clip(r - alpha s)`` [N, A, D] (r's device), its logits [N, A, K] and images [N, A, 3, H, W] (CPU)."""
    alpha = torch.as_tensor(alphas, dtype=r.dtype, device=r.device)
    path = classifier.spec.clip_penultimate(r[:, None, :] - alpha[None, :, None] * s[:, None, :])  # [N, A, D]
    logits, images = render_and_classify(link, generator, classifier, path.reshape(-1, link.r_dim),
                                          batch_size=batch_size, keep_images=True)
    n_examples, n_alphas = path.shape[:2]
    return (path, logits.reshape(n_examples, n_alphas, -1),
            images.reshape(n_examples, n_alphas, *images.shape[1:]))


def _trajectory(link: LinearLink, classifier: Classifier, alphas: np.ndarray, path: Tensor, logits: Tensor,
                images: Tensor, realism: LatentRealism | None) -> Trajectory:
    n_examples, n_alphas = path.shape[:2]
    r_path = path.cpu().numpy()
    w_path = link.predict(r_path.reshape(-1, link.r_dim)).reshape(n_examples, n_alphas, link.w_dim)
    return Trajectory(
        alphas=np.asarray(alphas, dtype=np.float64), r=r_path, w=w_path,
        images=to_uint8(images.numpy()),  # [N, A, 3, H, W] -> [N, A, H, W, 3]
        probabilities=logits.softmax(dim=-1).numpy(),
        r_pca=path_pca(r_path), w_pca=path_pca(w_path), class_names=tuple(classifier.spec.class_names),
        latent_distance=None if realism is None else realism.distance(w_path),
        realism_threshold=None if realism is None else float(realism.threshold),
    )


def top_shifted_units(s: Tensor | np.ndarray, k: int = 10) -> np.ndarray:
    """The ``k`` units with the largest ``|s|`` per example, largest first (ties by lower index).

    Parameters
    ----------
    s : Tensor or ndarray, shape [N, D]
        Shifts.
    k : int
        Units per example, ``1 <= k <= D``.

    Returns
    -------
    ndarray of int, shape (N, k)
    """
    s = s.detach().cpu().numpy() if isinstance(s, Tensor) else np.asarray(s)
    if s.ndim != 2:
        raise ValueError(f"s must have shape [N, D]; got {list(s.shape)}")
    if not 1 <= k <= s.shape[1]:
        raise ValueError(f"k must be in [1, D={s.shape[1]}]; got {k}")
    return np.argsort(-np.abs(s), axis=1, kind="stable")[:, :k]


def unit_frequency(s: Tensor | np.ndarray, k: int = 10) -> pd.Series:
    """How often each unit is among an example's top-``k`` shifted units.

    Returns
    -------
    pandas.Series of int
        Indexed by ``unit``, named ``count``; only units that occur, most frequent first (ties by lower unit).
    """
    top = top_shifted_units(s, k)
    units, counts = np.unique(top, return_counts=True)
    order = np.lexsort((units, -counts))
    return pd.Series(counts[order], index=pd.Index(units[order], name="unit"), name="count")
