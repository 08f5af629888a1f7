"""Model layer: hooks and edits on any nn.Module, layer activations of images, classifiers described by a spec,
generators in the StyleGAN convention."""

from linkviz.models.activations import iter_layer_activations, layer_activations
from linkviz.models.adapters import StyleGANAdapter, UnsafePickleError, ZOnlyGenerator, load_stylegan_pickle
from linkviz.models.classifier import Classifier, ClassifierSpec, preprocess
from linkviz.models.edits import Edit, FunctionEdit, UnitEdit, as_unit, as_units
from linkviz.models.efficientnet import (
    EFFICIENTNET_LITE0_LAYERS,
    MissingAssetError,
    efficientnet_lite0_spec,
    imagenet_class_names,
    load_efficientnet_lite0,
)
from linkviz.models.generator import Generator, GeneratorOutputError, check_generated, one_hot
from linkviz.models.hooks import (
    ActivationCache,
    LayerCalledTwiceError,
    LayerNotFoundError,
    hooks,
    resolve_module,
    run_with_cache,
)
from linkviz.models.modules import eval_mode, module_device

__all__ = [
    "EFFICIENTNET_LITE0_LAYERS",
    "ActivationCache",
    "Classifier",
    "ClassifierSpec",
    "Edit",
    "FunctionEdit",
    "Generator",
    "GeneratorOutputError",
    "LayerCalledTwiceError",
    "LayerNotFoundError",
    "MissingAssetError",
    "StyleGANAdapter",
    "UnitEdit",
    "UnsafePickleError",
    "ZOnlyGenerator",
    "as_unit",
    "as_units",
    "check_generated",
    "efficientnet_lite0_spec",
    "eval_mode",
    "hooks",
    "imagenet_class_names",
    "iter_layer_activations",
    "layer_activations",
    "load_efficientnet_lite0",
    "load_stylegan_pickle",
    "module_device",
    "one_hot",
    "preprocess",
    "resolve_module",
    "run_with_cache",
]
