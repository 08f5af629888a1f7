"""Model layer: hooks on any nn.Module, classifiers described by a spec, generators in the StyleGAN convention."""

from linkviz.models.classifier import Classifier, ClassifierSpec, preprocess
from linkviz.models.efficientnet import (
    EFFICIENTNET_LITE0_LAYERS,
    MissingAssetError,
    efficientnet_lite0_spec,
    imagenet_class_names,
    load_efficientnet_lite0,
)
from linkviz.models.generator import (
    Generator,
    GeneratorOutputError,
    StyleGANAdapter,
    UnsafePickleError,
    ZOnlyGenerator,
    check_generated,
    load_stylegan_pickle,
    one_hot,
)
from linkviz.models.hooks import (
    ActivationCache,
    LayerNotFoundError,
    UnitEdit,
    hooks,
    resolve_module,
    run_with_cache,
)

__all__ = [
    "EFFICIENTNET_LITE0_LAYERS",
    "MissingAssetError",
    "efficientnet_lite0_spec",
    "imagenet_class_names",
    "load_efficientnet_lite0",
    "ActivationCache",
    "Classifier",
    "ClassifierSpec",
    "Generator",
    "GeneratorOutputError",
    "LayerNotFoundError",
    "StyleGANAdapter",
    "UnitEdit",
    "UnsafePickleError",
    "ZOnlyGenerator",
    "check_generated",
    "hooks",
    "load_stylegan_pickle",
    "one_hot",
    "preprocess",
    "resolve_module",
    "run_with_cache",
]
