import pytest
import torch
from torch import nn

from linkviz.models import ActivationCache, LayerNotFoundError, UnitEdit, hooks, resolve_module, run_with_cache

X = torch.tensor([[1.0, 2.0], [0.0, 0.0]])  # hidden h = [[1, 2, 4], [0, 0, 1]], logits [[5, -2], [1, -1]]


def test_run_with_cache_matches_manual_forward(tiny_mlp, assert_no_hooks):
    logits, cache = run_with_cache(tiny_mlp, X, ["0", "1"])
    pre = X @ tiny_mlp[0].weight.T + tiny_mlp[0].bias
    torch.testing.assert_close(cache["0"], pre, rtol=0, atol=0)
    torch.testing.assert_close(cache["1"], torch.relu(pre), rtol=0, atol=0)
    torch.testing.assert_close(logits, torch.tensor([[5.0, -2.0], [1.0, -1.0]]))
    assert isinstance(cache, ActivationCache) and list(cache) == ["0", "1"]
    assert not cache["1"].requires_grad
    assert "'1'  [2, 3]" in repr(cache)
    assert_no_hooks(tiny_mlp)


@pytest.mark.parametrize(
    ("edit", "expected"),
    [
        (UnitEdit("1", (0,), "replace", 10.0), [[14.0, -2.0], [11.0, -1.0]]),  # h0 -> 10
        (UnitEdit("1", (2,), "add", 1.0), [[6.0, -3.0], [2.0, -2.0]]),  # h2 += 1
        (UnitEdit("1", (0, 1), "scale", 3.0), [[7.0, 2.0], [1.0, -1.0]]),  # h0, h1 *= 3
        (UnitEdit("1", (2,), "replace", torch.tensor([[0.0], [2.0]])), [[1.0, 2.0], [2.0, -2.0]]),  # per example
        (UnitEdit("1", None, "scale", 0.0), [[0.0, 0.0], [0.0, 0.0]]),  # every unit
        (UnitEdit("0", (0,), "replace", -5.0), [[4.0, -2.0], [1.0, -1.0]]),  # before the ReLU
    ],
)
def test_edits_change_logits_by_hand_computed_amounts(tiny_mlp, edit, expected):
    logits, cache = run_with_cache(tiny_mlp, X, "1", edits=[edit])
    torch.testing.assert_close(logits, torch.tensor(expected))
    torch.testing.assert_close(cache["1"] @ tiny_mlp[2].weight.T, logits)  # the edited output is captured


def test_edit_on_conv_output_is_per_channel(tiny_cnn):
    x = torch.zeros(1, 3, 2, 2)
    _, cache = run_with_cache(tiny_cnn, x, "layer1.0.conv", edits=[UnitEdit("layer1.0.conv", (1,), "add", 2.0)])
    torch.testing.assert_close(cache["layer1.0.conv"][0, :, 0, 0], torch.tensor([0.5, 2.0]))


def test_no_hooks_leak_after_exception_in_forward(tiny_mlp, assert_no_hooks):
    with pytest.raises(RuntimeError):
        run_with_cache(tiny_mlp, torch.zeros(1, 5), ["0", "2"], edits=[UnitEdit("1", (0,), "add", 1.0)])
    assert_no_hooks(tiny_mlp)
    with pytest.raises(ZeroDivisionError):
        with hooks(tiny_mlp, capture=["0"]):
            raise ZeroDivisionError
    assert_no_hooks(tiny_mlp)


def test_bad_layer_name_registers_nothing_and_suggests_close_name(tiny_cnn, assert_no_hooks):
    with pytest.raises(LayerNotFoundError) as info:
        with hooks(tiny_cnn, capture=["fc", "layer1.0.cnv"]):
            pass
    assert isinstance(info.value, KeyError)
    message = str(info.value)
    assert "'layer1.0.cnv'" in message and "'layer1.0.conv'" in message and "named modules" in message
    assert_no_hooks(tiny_cnn)
    with pytest.raises(LayerNotFoundError):
        run_with_cache(tiny_cnn, torch.zeros(1, 3, 2, 2), ["fc"], edits=[UnitEdit("nope", (0,), "add", 1.0)])
    assert_no_hooks(tiny_cnn)


def test_resolve_module(tiny_cnn):
    assert resolve_module(tiny_cnn, "layer1.0.conv") is tiny_cnn.layer1[0].conv
    assert resolve_module(tiny_cnn, "") is tiny_cnn


def test_unit_out_of_range_names_channel_count(tiny_mlp, assert_no_hooks):
    with pytest.raises(IndexError, match=r"layer '1'.*3 channels"):
        run_with_cache(tiny_mlp, X, "1", edits=[UnitEdit("1", (3,), "add", 1.0)])
    assert_no_hooks(tiny_mlp)


def test_edit_validation():
    with pytest.raises(ValueError, match="unknown edit mode"):
        UnitEdit("1", (0,), "multiply", 1.0)
    with pytest.raises(ValueError, match="duplicates"):
        UnitEdit("1", (0, 0), "add", 1.0)
    with pytest.raises(ValueError, match="broadcast"):
        UnitEdit("1", (0, 1), "add", torch.ones(2, 3)).apply(torch.zeros(2, 3))


class _TupleOut(nn.Module):
    def forward(self, x):
        return x * 2, "aux"


def test_tuple_output_first_tensor_is_captured_and_edited():
    model = nn.Sequential(_TupleOut())
    x = torch.ones(1, 2)
    with hooks(model, capture=["0"], edits=[UnitEdit("0", (1,), "replace", 7.0)]) as store:
        out = model(x)
    assert out[1] == "aux"
    torch.testing.assert_close(out[0], torch.tensor([[2.0, 7.0]]))
    torch.testing.assert_close(store["0"], out[0])
