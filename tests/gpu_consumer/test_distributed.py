"""Two gloo ranks, each on its own batches, end with the weights one process
gets by averaging the two batches' gradients at every step."""

import os
import socket

import pytest
import torch
import torch.multiprocessing as mp

from gpu_consumer import distributed
from gpu_consumer.loss import max_margin_loss
from gpu_consumer.optim import learning_rate, make_optimizer, set_learning_rate
from gpu_consumer.pinsage import PinSage
from gpu_consumer.train import Trainer
from sagewalk.config import load

STEPS = 4


def config():
    return load(None, ["trainer.warmup_steps=2", "trainer.lr=0.01", "trainer.grad_clip=0.5",
                       "trainer.margin=0.5"]).trainer


def fresh_model(seed):
    torch.manual_seed(seed)
    return PinSage(feature_dim=5, hidden_dim=16, embedding_dim=8, num_layers=2)


def batches():
    from tests.gpu_consumer.batches import make_batch
    return [make_batch(s, batch_size=8, easy=6, hard=1) for s in range(2 * STEPS)]


def rank_main(rank, world, port, out_dir):
    os.environ.update(MASTER_ADDR="127.0.0.1", MASTER_PORT=str(port), RANK=str(rank),
                      WORLD_SIZE=str(world))
    torch.set_num_threads(1)
    me = distributed.from_environment()
    distributed.init(me, torch.device("cpu"))
    # different seeds per rank: the broadcast from rank 0 must make them equal
    trainer = Trainer(fresh_model(rank), config(), total_steps=STEPS, device=torch.device("cpu"))
    data = batches()
    for i in range(STEPS):
        trainer.train_step(data[2 * i + rank])
    torch.save(trainer.model.state_dict(), os.path.join(out_dir, f"rank{rank}.pt"))
    distributed.shutdown()


def single_process_reference():
    cfg = config()
    model = fresh_model(0)
    optimizer = make_optimizer(model, cfg)
    data = batches()
    for step in range(STEPS):
        optimizer.zero_grad()
        for b in data[2 * step:2 * step + 2]:
            out = model(b)
            loss = max_margin_loss(out, b.queries, b.positives, b.easy_negatives,
                                   b.hard_negatives, cfg.margin).loss
            (loss / 2).backward()
        torch.nn.utils.clip_grad_norm_(model.parameters(), cfg.grad_clip)
        set_learning_rate(optimizer, learning_rate(step, lr=cfg.lr, warmup_steps=cfg.warmup_steps,
                                                   total_steps=STEPS, decay=cfg.lr_decay,
                                                   min_ratio=cfg.min_lr_ratio))
        optimizer.step()
    return model.state_dict()


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.mark.slow  # two spawned processes importing torch: ~12 s on 2 cores
def test_two_gloo_ranks_equal_single_process_training(tmp_path):
    mp.start_processes(rank_main, args=(2, free_port(), str(tmp_path)), nprocs=2,
                       join=True, start_method="spawn")
    rank0 = torch.load(tmp_path / "rank0.pt", weights_only=True)
    rank1 = torch.load(tmp_path / "rank1.pt", weights_only=True)
    reference = single_process_reference()
    for name, value in reference.items():
        assert torch.equal(rank0[name], rank1[name]), f"ranks diverged at {name}"
        assert torch.allclose(rank0[name], value, atol=1e-5, rtol=1e-4), name
    # and training did move the weights away from the start
    start = fresh_model(0).state_dict()
    assert any(not torch.allclose(start[k], rank0[k]) for k in start)


def test_single_process_helpers_are_no_ops():
    assert distributed.from_environment().world_size in (1, int(os.environ.get("WORLD_SIZE", 1)))
    assert distributed.all_agree(True) and not distributed.all_agree(False)
    assert not distributed.active()
