import copy

import pytest
import torch

from linkviz.models import Classifier, ClassifierSpec, LayerNotFoundError, UnitEdit, preprocess


def _spec(**overrides) -> ClassifierSpec:
    options = {"input_size": (2, 2), "in_channels": 3, "value_range": (0.0, 1.0), "mean": (0.0,) * 3,
               "std": (1.0,) * 3, "resize_to": None, "penultimate_layer": "avgpool", "class_names": ("a", "b", "c"),
               "head_layer": "fc"}
    return ClassifierSpec(**{**options, **overrides})


@pytest.mark.parametrize(("pixel", "expected"), [(-1.0, 0.0), (0.0, 127.5), (1.0, 255.0)])
def test_value_mapping_is_exact_on_constant_images(pixel, expected):
    images = torch.full((2, 3, 4, 4), pixel)
    out = preprocess(images, _spec(input_size=(4, 4), value_range=(0.0, 255.0)))
    assert torch.equal(out, torch.full((2, 3, 4, 4), expected))


def test_normalisation():
    out = preprocess(torch.ones(1, 3, 2, 2), _spec(mean=(0.5, 0.5, 0.0), std=(0.25, 0.5, 2.0)))
    torch.testing.assert_close(out[0, :, 0, 0], torch.tensor([2.0, 1.0, 0.5]))


def test_center_crop_geometry_matches_imagenet_recipe():
    images = torch.full((1, 3, 256, 256), -1.0)
    images[0, :, 16, 16] = 1.0  # first pixel of the central 224 crop
    images[0, :, 15, 15] = 1.0  # just outside it
    spec = ClassifierSpec.imagenet("avgpool", ["x"])
    out = preprocess(images, spec)
    assert out.shape == (1, 3, 224, 224)
    unnormalised = out * torch.tensor(spec.std).view(1, 3, 1, 1) + torch.tensor(spec.mean).view(1, 3, 1, 1)
    torch.testing.assert_close(unnormalised[0, :, 0, 0], torch.ones(3))
    assert torch.count_nonzero(unnormalised.abs() > 1e-5) == 3


def test_resize_shorter_side_then_center_crop():
    images = torch.full((1, 3, 64, 128), -1.0)
    images[..., 64:] = 1.0  # right half bright: the edge must land in the middle of the crop
    out = preprocess(images, _spec(input_size=(28, 28), resize_to=32))  # 64x128 -> 32x64 -> crop cols 18..45
    assert out.shape == (1, 3, 28, 28)
    torch.testing.assert_close(out[..., :12], torch.zeros(1, 3, 28, 12))
    torch.testing.assert_close(out[..., 16:], torch.ones(1, 3, 28, 12))


def test_plain_resize_without_resize_to():
    out = preprocess(torch.full((1, 3, 8, 8), 0.5), _spec(input_size=(4, 4)))
    torch.testing.assert_close(out, torch.full((1, 3, 4, 4), 0.75))


def test_grayscale():
    images = torch.stack([torch.full((2, 2), v) for v in (1.0, -1.0, 0.0)])[None]  # RGB = (1, 0, 0.5) in [0, 1]
    out = preprocess(images, _spec(in_channels=1, mean=(0.0,), std=(1.0,)))
    assert out.shape == (1, 1, 2, 2)
    torch.testing.assert_close(out, torch.full((1, 1, 2, 2), 0.299 + 0.114 * 0.5))


@pytest.mark.parametrize(
    ("images", "words"),
    [
        (torch.zeros(3, 4, 4), "shape [3, 4, 4]"),
        (torch.zeros(1, 4, 4, 4), "shape [1, 4, 4, 4]"),
        (torch.zeros(1, 3, 4, 4, dtype=torch.uint8), "torch.uint8"),
        (torch.tensor([float("nan"), 0.0, 0.5]).view(1, 3, 1, 1), "1 NaN"),
        (torch.tensor([1.5, 0.0, -0.2]).view(1, 3, 1, 1), "max 1.5"),
    ],
)
def test_bad_input_raises_informative_value_error(images, words):
    with pytest.raises(ValueError, match=words.replace("[", r"\[")):
        preprocess(images, _spec())


def test_forward_generated_returns_logits_and_flat_penultimate(tiny_cnn, assert_no_hooks):
    classifier = Classifier(tiny_cnn, _spec())
    images = torch.rand(5, 3, 4, 4, generator=torch.Generator().manual_seed(0)) * 2 - 1
    logits, r = classifier.forward_generated(images)
    assert logits.shape == (5, 3) and r.shape == (5, 2)
    assert not logits.requires_grad
    x = preprocess(images, classifier.spec)
    torch.testing.assert_close(r, tiny_cnn.avgpool(tiny_cnn.layer1(x)).flatten(1))
    torch.testing.assert_close(classifier.logits_from_penultimate(r), logits)
    assert classifier.device == torch.device("cpu")
    assert_no_hooks(tiny_cnn)


def test_forward_generated_with_edit_and_grad(tiny_cnn):
    classifier = Classifier(tiny_cnn, _spec())
    images = torch.zeros(2, 3, 4, 4, requires_grad=True)
    logits, r = classifier.forward_generated(images, edits=[UnitEdit("avgpool", (0,), "replace", 0.0)], grad=True)
    assert torch.equal(r[:, 0], torch.zeros(2))
    torch.testing.assert_close(logits, classifier.logits_from_penultimate(r))
    logits.sum().backward()
    assert images.grad is not None


def test_classifier_validation(tiny_cnn):
    with pytest.raises(LayerNotFoundError, match="avgpool"):
        Classifier(tiny_cnn, _spec(penultimate_layer="avgpol"))
    classifier = Classifier(tiny_cnn, _spec(class_names=("a", "b")))
    with pytest.raises(ValueError, match=r"K=2.*\[1, 3\]"):
        classifier.forward_generated(torch.zeros(1, 3, 2, 2))
    with pytest.raises(ValueError, match="head_layer"):
        Classifier(tiny_cnn, _spec(head_layer=None)).logits_from_penultimate(torch.zeros(1, 2))
    with pytest.raises(ValueError, match="mean and std"):
        _spec(mean=(0.0,))


@pytest.mark.parametrize(
    ("image_dtype", "module_dtype", "atol"),
    [
        (torch.float64, torch.float32, 1e-6),   # float64 images: preprocessed in float64, fed as float32
        (torch.float16, torch.float32, 1e-3),   # half images: within half rounding of the pixels (2**-11)
        (torch.float32, torch.float16, 1e-2),   # half classifier: within half rounding of weights and sums
        (torch.float32, torch.bfloat16, 3e-2),  # bfloat16 keeps 8 bits of mantissa
    ],
)
def test_forward_generated_casts_images_to_the_module_dtype(tiny_cnn, image_dtype, module_dtype, atol):
    images = torch.rand(3, 3, 4, 4, generator=torch.Generator().manual_seed(1)) * 2 - 1
    reference_logits, reference_r = Classifier(copy.deepcopy(tiny_cnn), _spec()).forward_generated(images)
    classifier = Classifier(tiny_cnn.to(module_dtype), _spec())
    logits, r = classifier.forward_generated(images.to(image_dtype))
    assert logits.dtype == r.dtype == torch.float32
    torch.testing.assert_close(logits, reference_logits, rtol=0, atol=atol)
    torch.testing.assert_close(r, reference_r, rtol=0, atol=atol)
    torch.testing.assert_close(classifier.logits_from_penultimate(r), logits, rtol=0, atol=atol)


def test_a_module_split_over_devices_or_dtypes_is_named(tiny_cnn):
    split = copy.deepcopy(tiny_cnn)
    split.fc.to("meta")
    with pytest.raises(ValueError, match=r"on several devices \(cpu, meta\).*classifier\.to"):
        Classifier(split, _spec()).forward_generated(torch.zeros(1, 3, 2, 2))
    mixed = tiny_cnn
    mixed.fc.double()
    with pytest.raises(ValueError, match=r"several floating dtypes \(torch\.float32, torch\.float64\)"):
        Classifier(mixed, _spec()).forward_generated(torch.zeros(1, 3, 2, 2))


def test_a_penultimate_layer_called_twice_is_refused():
    class Twice(torch.nn.Module):
        def __init__(self) -> None:
            super().__init__()
            self.avgpool = torch.nn.AdaptiveAvgPool2d(1)
            self.fc = torch.nn.Linear(3, 3)

        def forward(self, x):
            return self.fc(self.avgpool(self.avgpool(x)).flatten(1))

    with pytest.raises(ValueError, match="'avgpool' was called 2 times per forward pass"):
        Classifier(Twice(), _spec()).forward_generated(torch.zeros(1, 3, 2, 2))
