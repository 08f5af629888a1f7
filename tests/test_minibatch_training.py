"""The shared minibatch loop: seeded order, steps or epochs, skipped small batches, callbacks, schedules, errors."""

import pytest
import torch
from single_thread import single_thread  # noqa: F401
from torch import nn

from linkviz.minibatch_training import fit_minibatches


def _regression(n: int = 10):
    torch.manual_seed(0)
    x = torch.linspace(-1, 1, n)[:, None]
    return x, 3 * x - 1


def test_learns_a_line_and_leaves_the_global_rng_alone():
    x, y = _regression(32)
    model = nn.Linear(1, 1)
    state = torch.get_rng_state()
    fit_minibatches(model, len(x), lambda rows, flipped: ((model(x[rows]) - y[rows]) ** 2).mean(), epochs=200,
                    batch_size=8, learning_rate=0.05, schedule=None, seed=0)
    assert torch.equal(torch.get_rng_state(), state)
    assert not model.training
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[3.0]]), atol=1e-2, rtol=0)
    torch.testing.assert_close(model.bias.detach(), torch.tensor([-1.0]), atol=1e-2, rtol=0)


@pytest.mark.parametrize("context", [torch.no_grad, torch.inference_mode])
def test_trains_when_called_under_no_grad(context):
    """A model trained lazily inside a caller's no_grad block (e.g. a segmenter made on first use) still learns."""
    x, y = _regression(32)
    model = nn.Linear(1, 1)
    with context():
        fit_minibatches(model, len(x), lambda rows, flipped: ((model(x[rows]) - y[rows]) ** 2).mean(), epochs=200,
                        batch_size=8, learning_rate=0.05, schedule=None, seed=0)
    torch.testing.assert_close(model.weight.detach(), torch.tensor([[3.0]]), atol=1e-2, rtol=0)


def test_steps_small_batches_and_callbacks():
    x, y = _regression(10)
    model = nn.Linear(1, 1)
    batches, steps, epochs = [], [], []

    def batch_loss(rows, flipped):
        batches.append(rows.tolist())
        return ((model(x[rows]) - y[rows]) ** 2).mean()

    fit_minibatches(model, 10, batch_loss, steps=5, batch_size=4, min_batch_size=3, learning_rate=0.1,
                    seed=torch.Generator().manual_seed(1), on_step=steps.append,
                    on_epoch=lambda epoch, loss: epochs.append((epoch, loss)))
    assert [len(b) for b in batches] == [4, 4, 4, 4, 4]  # each epoch's last batch of 2 is skipped
    assert len(set(batches[0] + batches[1])) == 8  # an epoch draws without replacement
    assert steps == [1, 2, 3, 4, 5]
    assert [e for e, _ in epochs] == [0, 1, 2] and all(loss > 0 for _, loss in epochs)


def test_schedule_is_stepped_once_per_optimiser_step():
    model = nn.Linear(1, 1)
    optimizer = torch.optim.SGD(model.parameters(), lr=1.0)
    rates = []
    fit_minibatches(model, 6, lambda rows, flipped: model(rows[:, None].float()).sum() * 0, epochs=2, batch_size=4,
                    optimizer=optimizer, seed=0, on_step=lambda step: rates.append(optimizer.param_groups[0]["lr"]),
                    schedule=lambda opt, total: torch.optim.lr_scheduler.LambdaLR(opt, lambda s: 1 - s / total))
    assert rates == pytest.approx([0.75, 0.5, 0.25, 0.0])


def test_bad_settings_raise():
    model = nn.Linear(1, 1)
    loss = lambda rows, flipped: model(rows[:, None].float()).sum()
    with pytest.raises(ValueError, match="exactly one of epochs and steps"):
        fit_minibatches(model, 4, loss, batch_size=2, learning_rate=0.1, seed=0)
    with pytest.raises(ValueError, match="exactly one of learning_rate and optimizer"):
        fit_minibatches(model, 4, loss, epochs=1, batch_size=2, seed=0)
    with pytest.raises(ValueError, match="batch_size must be at least 1"):
        fit_minibatches(model, 4, loss, epochs=1, batch_size=0, learning_rate=0.1, seed=0)
    with pytest.raises(ValueError, match="no batch of at least 5"):
        fit_minibatches(model, 4, loss, steps=1, batch_size=8, min_batch_size=5, learning_rate=0.1, seed=0)
