"""A layer's activation maps on probe images: re-exported from :mod:`linkviz.models.activations`, where they are
computed for every part of linkviz (dissection, concept PCA, LaViSE, widgets)."""

from linkviz.models.activations import iter_layer_activations, layer_activations

__all__ = ["iter_layer_activations", "layer_activations"]
