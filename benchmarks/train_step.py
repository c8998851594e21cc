"""Examples/s of the training step for the default model at batch 512.

    python3 benchmarks/train_step.py [--quick] [--device cpu|cuda] [--precision fp32|bf16|both]
                                     [--model pinsage|multisage]

Batches are synthetic but shaped like the sampler's: 512 (query, positive)
pairs, 500 shared easy negatives, K=2 layers of top-25 neighbourhoods drawn
from a catalogue of --items items (deduplicated per layer, as a real
computation graph), float16 features of width --feature-dim (384: a
MiniLM title embedding).  Timed: forward, loss, backward, clip, Adam step,
including the host-to-device copy.  --model multisage: each (ego,
neighbour) pair also names one of --contexts featureless context nodes (a
user, as on the planted graphs), and the neighbourhoods are MultiSage's
(sampler.multisage_num_neighbors).  Prints one JSON line.
"""

from __future__ import annotations

import argparse
import json
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))


def synthetic_minibatch(rng, *, items: int, batch: int, easy: int, hard: int, fanout: int,
                        layers: int, feature_dim: int, contexts: int = 0):
    from sampler.records import Block, ComputationGraph
    from worker.batch import MiniBatch
    from worker.ticket import Ticket

    targets = rng.choice(items, size=2 * batch + easy + batch * hard, replace=False)
    sets, blocks = [targets.astype(np.int64)], []
    for _ in range(layers):
        dst = sets[0]
        nbrs = rng.integers(0, items, size=(len(dst), fanout))
        src = np.concatenate([dst, np.setdiff1d(np.unique(nbrs), dst)])
        order = np.argsort(src)
        index = order[np.searchsorted(src[order], nbrs)].astype(np.int32)
        weight = np.sort(rng.random((len(dst), fanout)).astype(np.float32), axis=1)[:, ::-1]
        weight /= weight.sum(1, keepdims=True)
        ctx = (rng.integers(0, contexts, size=(len(dst), fanout)).astype(np.int32)
               if contexts else None)
        blocks.insert(0, Block(len(dst), index, np.ascontiguousarray(weight), ctx))
        sets.insert(0, src)
    n_t = len(targets)
    pos = np.arange(n_t, dtype=np.int32)
    features = rng.standard_normal((len(sets[0]), feature_dim)).astype(np.float16)
    hard_neg = pos[2 * batch + easy:].reshape(batch, hard) if hard else np.zeros((batch, 0),
                                                                                 np.int32)
    ctx_types = ctx_ids = None
    context_features = ()
    if contexts:
        ctx_types = np.zeros(contexts, np.int16)
        ctx_ids = rng.choice(10 * contexts, size=contexts, replace=False).astype(np.int64)
        context_features = (np.zeros((contexts, 0), np.float16),)
    return MiniBatch(Ticket(0, 0, 0, hard),
                     ComputationGraph(tuple(sets), tuple(blocks), ctx_types, ctx_ids),
                     features, pos[:batch], pos[batch:2 * batch],
                     pos[2 * batch:2 * batch + easy], hard_neg, context_features)


def measure(args, precision: str) -> dict:
    import torch

    from gpu_consumer.pinsage import PinSage
    from gpu_consumer.tensors import TensorBatch
    from gpu_consumer.train import Trainer
    from sagewalk.config import load

    config = load(None, [f"trainer.precision={precision}", f"trainer.device={args.device}",
                         *args.set])
    cfg, scfg = config.trainer, config.sampler
    rng = np.random.default_rng(0)
    pin = args.device.startswith("cuda")
    multisage = args.model == "multisage"
    batches = [TensorBatch.from_minibatch(synthetic_minibatch(
        rng, items=args.items, batch=scfg.batch_size, easy=scfg.easy_negatives,
        hard=args.hard, fanout=scfg.multisage_num_neighbors if multisage else scfg.num_neighbors,
        layers=scfg.num_layers, feature_dim=args.feature_dim,
        contexts=args.contexts if multisage else 0), pin=pin) for _ in range(2)]
    torch.manual_seed(0)
    common = dict(feature_dim=args.feature_dim, hidden_dim=cfg.hidden_dim,
                  embedding_dim=cfg.embedding_dim, num_layers=scfg.num_layers,
                  pooling=cfg.pooling, dense_layers=cfg.dense_layers)
    if multisage:
        from gpu_consumer.multisage import MultiSage
        model = MultiSage(**common, context_dims={"user": 0},
                          attention_heads=cfg.attention_heads,
                          context_combine=cfg.context_combine)
    else:
        model = PinSage(**common)
    trainer = Trainer(model, cfg, total_steps=10_000, device=torch.device(args.device))
    sync = torch.cuda.synchronize if pin else (lambda: None)
    for i in range(args.warmup):
        trainer.train_step(batches[i % 2])
    sync()
    start = time.perf_counter()
    for i in range(args.steps):
        trainer.train_step(batches[i % 2])
    sync()
    elapsed = time.perf_counter() - start
    return {"precision": "bf16" if trainer.bf16 else "fp32",
            "examples_per_s": round(args.steps * scfg.batch_size / elapsed, 1),
            "step_ms": round(1000 * elapsed / args.steps, 1),
            "nodes_per_layer": [len(n) for n in batches[0].node_sets]}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true", help="3 timed steps, 20k items.")
    parser.add_argument("--device", default="cpu")
    parser.add_argument("--precision", default="fp32", choices=["fp32", "bf16", "both"])
    parser.add_argument("--items", type=int, default=None)
    parser.add_argument("--feature-dim", type=int, default=384)
    parser.add_argument("--hard", type=int, default=0, help="Hard negatives per example.")
    parser.add_argument("--model", default="pinsage", choices=["pinsage", "multisage"])
    parser.add_argument("--contexts", type=int, default=20_000,
                        help="--model multisage: distinct context nodes in a batch.")
    parser.add_argument("--set", action="append", default=[], metavar="KEY=VALUE",
                        help="A config override, e.g. sampler.num_neighbors=10.")
    parser.add_argument("--steps", type=int, default=None)
    parser.add_argument("--warmup", type=int, default=2)
    args = parser.parse_args()
    args.items = args.items or (20_000 if args.quick else 100_000)
    args.steps = args.steps or (3 if args.quick else 10)
    import torch

    runs = [measure(args, p) for p in (["fp32", "bf16"] if args.precision == "both"
                                       else [args.precision])]
    print(json.dumps({"benchmark": "train_step", "model": args.model, "set": args.set,
                      "batch": 512,
                      "device": args.device, "threads": torch.get_num_threads(),
                      "items": args.items, "feature_dim": args.feature_dim,
                      "hard_negatives": args.hard, "steps": args.steps, "quick": args.quick,
                      "runs": runs, "examples_per_s": runs[0]["examples_per_s"],
                      "load_avg_1m": round(os.getloadavg()[0], 2)}))


if __name__ == "__main__":
    main()
