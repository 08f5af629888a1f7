"""linkviz: see what a CNN classifier has learned.

The core library is pure numpy/torch and imports no display stack; the Jupyter
layer lives in :mod:`linkviz.widgets`.
"""

from linkviz.cache import CacheMismatchError, ChunkedStore, default_cache_root
from linkviz.counterfactual import counterfactual_trajectory, find_counterfactuals, find_minimal_counterfactuals
from linkviz.frechet import frechet_distance
from linkviz.hashing import hash_arguments, hash_state
from linkviz.linking import (
    LinearLink,
    LinkedModel,
    build_linked_model,
    evaluate_link,
    fit_linear_link,
    space_similarity,
)
from linkviz.models import (
    ActivationCache,
    Classifier,
    ClassifierSpec,
    Generator,
    GeneratorOutputError,
    LayerNotFoundError,
    StyleGANAdapter,
    UnitEdit,
    UnsafePickleError,
    ZOnlyGenerator,
    check_generated,
    hooks,
    load_stylegan_pickle,
    one_hot,
    preprocess,
    resolve_module,
    run_with_cache,
)
from linkviz.pairs import PairSet, sample_pairs
from linkviz.tuning import UnitStats, effect_sizes, run_sweep, tuned_latents
from linkviz.world import GroundTruthWorld, World

__version__ = "0.1.0"

#: Names loaded on first use, so that ``import linkviz`` loads no world and no widget toolkit:
#: name -> (module, attribute).
_LAZY = {
    "ToyWorld": ("linkviz.worlds.toy", "ToyWorld"),
    "load_toy_world": ("linkviz.worlds.toy", "load_toy_world"),
    "load_faces_world": ("linkviz.worlds.faces", "load_faces_world"),
    "load_world": ("linkviz.worlds", "load_world"),
    "explore": ("linkviz.widgets.app", "explore"),  # the app (loads ipywidgets on first use)
}


def __getattr__(name: str):
    """Import a world's entry point (or the app) on first use (PEP 562)."""
    if name not in _LAZY:
        raise AttributeError(f"module 'linkviz' has no attribute {name!r}")
    from importlib import import_module

    module_name, attribute = _LAZY[name]
    return getattr(import_module(module_name), attribute)


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_LAZY))

__all__ = [
    "ActivationCache",
    "CacheMismatchError",
    "ChunkedStore",
    "Classifier",
    "ClassifierSpec",
    "Generator",
    "GeneratorOutputError",
    "GroundTruthWorld",
    "LayerNotFoundError",
    "LinearLink",
    "LinkedModel",
    "PairSet",
    "StyleGANAdapter",
    "ToyWorld",
    "UnitEdit",
    "UnitStats",
    "UnsafePickleError",
    "World",
    "ZOnlyGenerator",
    "build_linked_model",
    "check_generated",
    "counterfactual_trajectory",
    "default_cache_root",
    "effect_sizes",
    "evaluate_link",
    "explore",
    "find_counterfactuals",
    "find_minimal_counterfactuals",
    "fit_linear_link",
    "frechet_distance",
    "hash_arguments",
    "hash_state",
    "hooks",
    "load_faces_world",
    "load_stylegan_pickle",
    "load_toy_world",
    "load_world",
    "one_hot",
    "preprocess",
    "resolve_module",
    "run_sweep",
    "run_with_cache",
    "sample_pairs",
    "space_similarity",
    "tuned_latents",
]
