"""Do the three ways of naming a unit agree? Network Dissection's label, LaViSE's words and tuning's strongest
change, mapped onto one shared vocabulary of concepts, per unit.

The three methods speak different languages: dissection labels are probe concepts (``"cap"``, ``"mushroom"``,
``"red-c"``, ``"blue-s"``), LaViSE words are words of a semantic space (``"cap"``, ``"blue"``, ``"umbrella"``),
tuning's strongest change is a (part, metric) of the change table (``("cap", "area")``). A
:class:`ConceptVocabulary` maps each word onto a **concept** of the world, explicitly:

- a part name maps to that part (``"cap" -> "cap"``, ``"background" -> "background"``);
- an object (class) name maps to the object, which is *compatible* with each of its parts (``"mushroom"`` agrees
  with ``"cap"`` and ``"stem"``, never with ``"tree"``);
- a colour name maps to the colour, with Broden's pixel-colour spelling too (``"red"`` and ``"red-c"`` -> ``"red"``);
- a Broden scene label (``"blue-s"``) maps to ``scene_concept`` when one is given: in the toy world the scene label
  is the colour of the background, so a scene detector is a background detector (``scene_concept="background"``);
- a texture name maps to the texture;
- ``aliases`` add any other word (e.g. ``{"sky": "background"}``);
- every other word (``"none"``, ``"umbrella"``, a word of no concept) is **unmapped**: it is missing, not a
  disagreement.

Tuning's strongest change maps through its part (the metric is kept in the table, but does not take part in the
match: the change table measures parts only). LaViSE's concept is the first of its ``n_words`` top words that maps
to a concept. A dissection label counts only if its IoU reaches ``min_iou`` (default: Bau et al.'s detector
threshold, 0.04).

Two concepts are compatible when equal or when one is an object and the other one of its parts. A unit's
agreement level, over the mapped labels of the three methods:

- ``"all agree"``: three labels, every pair compatible;
- ``"two agree"``: some pair compatible, not all three (or only two labels, compatible);
- ``"all disagree"``: at least two labels, no pair compatible;
- ``"not enough labels"``: fewer than two labels.

A unit is **flagged** when two or more labels are present and some pair of them is incompatible.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from itertools import combinations

import numpy as np
import pandas as pd

from linkviz.quantify.population import LabelVectors, strongest_label

__all__ = ["AGREEMENT_LEVELS", "DETECTOR_IOU", "METHODS", "ConceptVocabulary", "MethodAgreement", "concept_vocabulary",
           "method_agreement", "strongest_changes"]

#: Agreement levels, most agreement first (the order of legends and counts).
AGREEMENT_LEVELS: tuple[str, ...] = ("all agree", "two agree", "all disagree", "not enough labels")
#: The three methods, in the order of the table's columns.
METHODS: tuple[str, ...] = ("dissection", "lavise", "tuning")
#: Bau et al.'s detector threshold (``linkviz.dissection.DETECTOR_IOU``; repeated, the quantify row imports no
#: dissection).
DETECTOR_IOU = 0.04


def _normal(word: object) -> str:
    return str(word).strip().lower()


@dataclass(frozen=True)
class ConceptVocabulary:
    """The shared vocabulary: which concept each word names, and which parts each object has.

    Attributes
    ----------
    concepts : Mapping of str to str
        Normalised word (lower case, stripped) -> concept.
    object_parts : Mapping of str to frozenset of str
        Object concept -> its part concepts (compatible with the object).
    """

    concepts: Mapping[str, str]
    object_parts: Mapping[str, frozenset[str]] = field(default_factory=dict)

    def concept(self, word: object) -> str | None:
        """The concept ``word`` names, or None if it is unmapped (also for None and NaN)."""
        if not isinstance(word, str) and (word is None or pd.isna(word)):
            return None
        return self.concepts.get(_normal(word))

    def first_concept(self, words: Iterable[object]) -> str | None:
        """The concept of the first word that names one, or None."""
        return next((c for c in map(self.concept, words) if c is not None), None)

    def compatible(self, a: str, b: str) -> bool:
        """Whether concepts ``a`` and ``b`` agree: equal, or an object and one of its parts."""
        return a == b or a in self.object_parts.get(b, ()) or b in self.object_parts.get(a, ())


def concept_vocabulary(*, parts: Sequence[str], objects: Mapping[str, Sequence[str]] | None = None,
                       colours: Sequence[str] = (), textures: Sequence[str] = (), scene_concept: str | None = None,
                       aliases: Mapping[str, str] | None = None) -> ConceptVocabulary:
    """Build a world's shared vocabulary explicitly (see the module for the rules).

    Parameters
    ----------
    parts : sequence of str
        Part names, as in the change table (e.g. a world's ``part_names``).
    objects : mapping of str to sequence of str, optional
        Object (class) name -> its parts (the toy world's ``CLASS_PARTS``).
    colours : sequence of str
        Colour names; ``"<colour>-c"`` maps to the colour too.
    textures : sequence of str
    scene_concept : str, optional
        The concept every ``"<colour>-s"`` scene label maps to (``"background"`` in the toy world).
    aliases : mapping of str to str, optional
        More words and their concepts, applied last.

    Returns
    -------
    ConceptVocabulary
    """
    objects = dict(objects or {})
    concepts: dict[str, str] = {}
    for part in parts:
        concepts[_normal(part)] = _normal(part)
    for name in objects:
        concepts[_normal(name)] = _normal(name)
    for colour in colours:
        concepts[_normal(colour)] = concepts[f"{_normal(colour)}-c"] = _normal(colour)
        if scene_concept is not None:
            concepts[f"{_normal(colour)}-s"] = _normal(scene_concept)
    for texture in textures:
        concepts[_normal(texture)] = _normal(texture)
    for word, concept in (aliases or {}).items():
        concepts[_normal(word)] = _normal(concept)
    unknown = sorted({p for ps in objects.values() for p in map(_normal, ps)} - {_normal(p) for p in parts})
    if unknown:
        raise ValueError(f"objects name parts {unknown} that are not in parts {list(parts)}; add them to parts")
    object_parts = {_normal(name): frozenset(map(_normal, ps)) for name, ps in objects.items()}
    return ConceptVocabulary(concepts=concepts, object_parts=object_parts)


def strongest_changes(vectors: LabelVectors) -> pd.DataFrame:
    """Each unit's strongest change: the label it changes most (:func:`strongest_label`) and that label's metric.

    Parameters
    ----------
    vectors : LabelVectors
        U units.

    Returns
    -------
    DataFrame
        ``unit, label, metric, change`` (U rows): the metric with the largest metric-scaled change of the strongest
        label, and its mean change. A unit that changes nothing has label and metric None.
    """
    labels = strongest_label(vectors, scaling="metric")
    scaled = vectors.matrix(scaling="metric").reshape(vectors.values.shape)  # (U, L, M)
    row = np.arange(len(vectors.units))
    label_index = np.array([vectors.labels.index(label) for label in labels])
    metric_index = np.abs(scaled[row, label_index]).argmax(axis=1)
    change = vectors.values[row, label_index, metric_index]
    moved = np.abs(np.nan_to_num(scaled)).reshape(len(row), -1).max(axis=1) > 0
    return pd.DataFrame({
        "unit": vectors.units,
        "label": np.where(moved, labels, None),
        "metric": np.where(moved, np.asarray(vectors.metrics, dtype=object)[metric_index], None),
        "change": np.where(moved, change, np.nan)})


def _level(concepts: list[object], vocabulary: ConceptVocabulary) -> tuple[str, bool, str | None]:
    """Agreement level, flag and dissenting method of one unit's three mapped concepts (see the module); a
    concept that is not a str (None, NaN) is missing."""
    present = [(method, c) for method, c in zip(METHODS, concepts) if isinstance(c, str)]
    if len(present) < 2:
        return "not enough labels", False, None
    agree = {(a, b): vocabulary.compatible(ca, cb) for (a, ca), (b, cb) in combinations(present, 2)}
    if all(agree.values()):
        return ("all agree" if len(present) == 3 else "two agree"), False, None
    if not any(agree.values()):
        return "all disagree", True, None
    alone = [m for m, _ in present if not any(ok for pair, ok in agree.items() if m in pair)]
    return "two agree", True, alone[0] if len(alone) == 1 else None


@dataclass(frozen=True, eq=False)
class MethodAgreement:
    """Per-unit agreement of dissection, LaViSE and tuning.

    Attributes
    ----------
    table : DataFrame
        One row per unit (ascending): ``unit, dissection_label, dissection_iou, dissection_concept, lavise_words,
        lavise_concept, tuning_label, tuning_metric, tuning_concept, n_labels, agreement, flagged, dissenter``,
        then any extra columns. Concepts and the dissenter are missing (``pd.isna``) where there is none.
    vocabulary : ConceptVocabulary
    """

    table: pd.DataFrame
    vocabulary: ConceptVocabulary

    @property
    def units(self) -> np.ndarray:
        """int of shape (U,)."""
        return self.table["unit"].to_numpy(dtype=np.int64)

    def levels(self, units: Sequence[int] | np.ndarray) -> np.ndarray:
        """Agreement level of each of ``units``, str of shape (len(units),); "not enough labels" for units absent
        from the table."""
        level = dict(zip(self.table["unit"], self.table["agreement"]))
        return np.array([level.get(int(u), AGREEMENT_LEVELS[-1]) for u in units], dtype=object)

    def flagged(self) -> pd.DataFrame:
        """The rows of flagged units (disagreements), fewest agreeing labels first, then by unit."""
        rank = {level: k for k, level in enumerate(AGREEMENT_LEVELS)}
        rows = self.table[self.table["flagged"]]
        return rows.assign(_rank=-rows["agreement"].map(rank)).sort_values(["_rank", "unit"], kind="stable").drop(
            columns="_rank").reset_index(drop=True)

    def counts(self) -> pd.Series:
        """Units per agreement level, in :data:`AGREEMENT_LEVELS` order (zeros included)."""
        return self.table["agreement"].value_counts().reindex(list(AGREEMENT_LEVELS), fill_value=0)

    def to_frame(self) -> pd.DataFrame:
        return self.table.reset_index(drop=True)


def _table(table: object, needed: tuple[str, ...], name: str, source: str) -> pd.DataFrame:
    """``table`` as a DataFrame (a result's ``to_frame()``), ValueError naming the columns it lacks."""
    if hasattr(table, "to_frame") and not isinstance(table, pd.DataFrame):
        table = table.to_frame()
    missing = set(needed) - set(table)
    if missing:
        raise ValueError(f"{name} needs columns {', '.join(needed)} ({source}); missing {sorted(missing)} in "
                         f"{list(table)}")
    return table


def _dissection_rows(dissection: pd.DataFrame | None) -> pd.DataFrame:
    columns = ["unit", "dissection_label", "dissection_iou"]
    if dissection is None:
        return pd.DataFrame(columns=columns)
    dissection = _table(dissection, ("unit", "label", "iou"), "dissection", "DissectionResult.to_frame()")
    return dissection.rename(columns={"label": "dissection_label", "iou": "dissection_iou"})[columns]


def _lavise_rows(lavise: pd.DataFrame | None, n_words: int) -> pd.DataFrame:
    if lavise is None:
        return pd.DataFrame(columns=["unit", "lavise_words"])
    lavise = _table(lavise, ("unit", "rank", "word"), "lavise", "LaviseExplanation.to_frame()")
    top = lavise.sort_values(["unit", "rank"], kind="stable").groupby("unit").head(n_words)
    return top.groupby("unit")["word"].agg(lambda words: tuple(map(str, words))).rename(
        "lavise_words").reset_index()


def _tuning_rows(tuning: pd.DataFrame | LabelVectors | None) -> pd.DataFrame:
    columns = ["unit", "tuning_label", "tuning_metric"]
    if tuning is None:
        return pd.DataFrame(columns=columns)
    if isinstance(tuning, LabelVectors):
        tuning = strongest_changes(tuning)
    missing = {"unit", "label", "metric"} - set(tuning)
    if missing:
        raise ValueError(f"tuning needs columns unit, label, metric (strongest_changes(vectors)); missing "
                         f"{sorted(missing)} in {list(tuning)}")
    return tuning.rename(columns={"label": "tuning_label", "metric": "tuning_metric"})[columns]


def _join_scores(table: pd.DataFrame, scores: pd.DataFrame, labels: Sequence[object], method: str) -> pd.DataFrame:
    """``table`` with the causal score of each unit's ``labels`` entry as ``<method>_causal_score, ..._ci_low,
    ..._ci_high``."""
    missing = {"unit", "label", "score", "ci_low", "ci_high"} - set(scores)
    if missing:
        raise ValueError(f"causal_scores needs columns unit, label, score, ci_low, ci_high "
                         f"(linkviz.labels.causal_scores); missing {sorted(missing)} in {list(scores)}")
    keyed = scores.assign(unit=scores["unit"].astype(np.int64), label=scores["label"].astype(str)).drop_duplicates(
        ["unit", "label"]).set_index(["unit", "label"])
    keys = pd.MultiIndex.from_arrays([table["unit"].to_numpy(), [str(label) for label in labels]])
    found = keyed.reindex(keys)
    return table.assign(**{f"{method}_causal_{name}": found[column].to_numpy(dtype=np.float64)
                           for name, column in (("score", "score"), ("ci_low", "ci_low"), ("ci_high", "ci_high"))})


def method_agreement(*, vocabulary: ConceptVocabulary, dissection: pd.DataFrame | None = None,
                     lavise: pd.DataFrame | None = None, tuning: pd.DataFrame | LabelVectors | None = None,
                     n_words: int = 5, min_iou: float = DETECTOR_IOU,
                     causal_scores: pd.DataFrame | None = None, extra: pd.DataFrame | None = None) -> MethodAgreement:
    """Per-unit agreement of the three methods on a shared vocabulary (see the module).

    Parameters
    ----------
    vocabulary : ConceptVocabulary
        From :func:`concept_vocabulary`.
    dissection : DataFrame or DissectionResult, optional
        ``unit, label, iou`` (:meth:`DissectionResult.to_frame`); NaN IoU or IoU below ``min_iou`` is no label.
    lavise : DataFrame or LaviseExplanation, optional
        ``unit, rank, word`` (:meth:`LaviseExplanation.to_frame`).
    tuning : DataFrame or LabelVectors, optional
        ``unit, label, metric`` (:func:`strongest_changes`), or the label vectors to take them from.
    n_words : int
        LaViSE words per unit considered (at least 1).
    min_iou : float
        Smallest IoU for which a dissection label counts.
    causal_scores : DataFrame, optional
        Causal scores of unit labels, ``unit, label, score, ci_low, ci_high``
        (:func:`linkviz.labels.causal_scores`): the row of each unit's dissection label becomes
        ``dissection_causal_score, dissection_causal_ci_low, dissection_causal_ci_high``, the row of its first
        mapped LaViSE word ``lavise_causal_score, ...``; NaN where a pair was not scored.
    extra : DataFrame, optional
        More per-unit columns, with a ``unit`` column, joined on the unit; units without a value get NaN.

    Returns
    -------
    MethodAgreement
        Over the union of the units the methods describe.
    """
    if n_words < 1:
        raise ValueError(f"n_words must be at least 1; got {n_words}")
    if extra is not None and "unit" not in extra:
        raise ValueError(f"extra needs a 'unit' column to join on; got columns {list(extra)}")
    table = (_dissection_rows(dissection).merge(_lavise_rows(lavise, n_words), on="unit", how="outer")
             .merge(_tuning_rows(tuning), on="unit", how="outer"))
    table["unit"] = table["unit"].astype(np.int64)
    table = table.sort_values("unit", kind="stable").reset_index(drop=True)
    iou = pd.to_numeric(table["dissection_iou"], errors="coerce").to_numpy(dtype=np.float64)
    counted = np.nan_to_num(iou, nan=-np.inf) >= min_iou
    table["dissection_concept"] = [vocabulary.concept(label) if ok else None
                                   for label, ok in zip(table["dissection_label"], counted)]
    table["lavise_words"] = [words if isinstance(words, tuple) else () for words in table["lavise_words"]]
    table["lavise_concept"] = [vocabulary.first_concept(words) for words in table["lavise_words"]]
    table["tuning_concept"] = [vocabulary.concept(label) for label in table["tuning_label"]]
    verdicts = [_level([row.dissection_concept, row.lavise_concept, row.tuning_concept], vocabulary)
                for row in table.itertuples()]
    concepts = table[["dissection_concept", "lavise_concept", "tuning_concept"]]
    table["n_labels"] = concepts.notna().sum(axis=1).astype(int)
    table["agreement"] = [level for level, _, _ in verdicts]
    table["flagged"] = [flag for _, flag, _ in verdicts]
    table["dissenter"] = [dissenter for _, _, dissenter in verdicts]
    order = ["unit", "dissection_label", "dissection_iou", "dissection_concept", "lavise_words", "lavise_concept",
             "tuning_label", "tuning_metric", "tuning_concept", "n_labels", "agreement", "flagged", "dissenter"]
    table = table[order]
    if causal_scores is not None:
        lavise_word = [next((w for w in words if vocabulary.concept(w) is not None), None)
                       for words in table["lavise_words"]]
        table = _join_scores(_join_scores(table, causal_scores, table["dissection_label"], "dissection"),
                             causal_scores, lavise_word, "lavise")
    if extra is not None:
        table = table.merge(extra.drop_duplicates("unit"), on="unit", how="left")
    return MethodAgreement(table=table, vocabulary=vocabulary)
