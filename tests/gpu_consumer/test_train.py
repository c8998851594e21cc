import copy

import pytest
import torch

from gpu_consumer.optim import learning_rate
from gpu_consumer.pinsage import PinSage
from gpu_consumer.train import Trainer, rng_state, set_rng_state, use_bf16
from sagewalk.config import load
from tests.gpu_consumer.batches import make_batch


def trainer(*overrides, total=100):
    cfg = load(None, ["trainer.warmup_steps=2", "trainer.lr=0.01", *overrides]).trainer
    torch.manual_seed(0)
    model = PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)
    return Trainer(model, cfg, total_steps=total, device=torch.device("cpu"))


def test_loss_falls_on_a_repeated_batch():
    t = trainer("trainer.margin=0.5")
    batch = make_batch(0, batch_size=16, easy=10)
    losses = [t.train_step(batch).loss for _ in range(30)]
    assert losses[-1] < 0.5 * losses[0]
    assert t.step == 30


def test_step_result_reports_rate_examples_and_norm():
    t = trainer()
    r = t.train_step(make_batch(1, batch_size=8))
    assert r.examples == 8 and r.lr == pytest.approx(0.005) and r.grad_norm > 0
    assert r.seconds > 0


def test_warmup_then_cosine_decay_to_min_ratio():
    rates = [learning_rate(s, lr=1.0, warmup_steps=4, total_steps=104, decay="cosine",
                           min_ratio=0.1) for s in range(110)]
    assert rates[:4] == [0.25, 0.5, 0.75, 1.0]
    assert all(a >= b for a, b in zip(rates[4:], rates[5:]))
    assert rates[104] == pytest.approx(0.1) and rates[109] == pytest.approx(0.1)
    assert learning_rate(50, lr=1.0, warmup_steps=0, total_steps=100, decay="none") == 1.0
    assert learning_rate(50, lr=1.0, warmup_steps=0, total_steps=100, decay="linear",
                         min_ratio=0.0) == pytest.approx(0.5)


def test_gradient_clipping_bounds_the_update():
    t = trainer("trainer.grad_clip=1e-6", "trainer.warmup_steps=0")
    before = copy.deepcopy(t.model.state_dict())
    t.train_step(make_batch(2))
    # Adam normalises step sizes, so clipping shows in the reported pre-clip norm
    # and in the gradients left after the step
    total = torch.sqrt(sum((p.grad ** 2).sum() for p in t.model.parameters()))
    assert total <= 1e-6 * 1.01
    assert any(not torch.equal(before[k], v) for k, v in t.model.state_dict().items())


def test_resume_from_state_continues_exactly():
    batches = [make_batch(s) for s in range(6)]
    straight = trainer()
    for b in batches:
        straight.train_step(b)
    first = trainer()
    for b in batches[:3]:
        first.train_step(b)
    state = copy.deepcopy(first.state_dict())
    resumed = trainer()
    resumed.load_state_dict(state)
    for b in batches[3:]:
        resumed.train_step(b)
    assert resumed.step == 6
    for k, v in straight.model.state_dict().items():
        assert torch.allclose(v, resumed.model.state_dict()[k], atol=1e-6), k


def test_rng_state_round_trip():
    import random

    import numpy as np
    state = rng_state()
    a = (torch.rand(3), np.random.rand(3), random.random())
    set_rng_state(state)
    b = (torch.rand(3), np.random.rand(3), random.random())
    assert torch.equal(a[0], b[0]) and (a[1] == b[1]).all() and a[2] == b[2]


def test_precision_choice():
    assert use_bf16("auto", torch.device("cuda")) and not use_bf16("auto", torch.device("cpu"))
    assert use_bf16("bf16", torch.device("cpu")) and not use_bf16("fp32", torch.device("cuda"))


def test_bf16_autocast_step_runs_on_cpu():
    t = trainer("trainer.precision=bf16")
    r = t.train_step(make_batch(3))
    assert t.bf16 and r.loss == r.loss  # not NaN
    assert all(p.dtype == torch.float32 for p in t.model.parameters())
