"""Defaults picked from the store and the budget for `sagewalk train`.

    stats = StoreStats.of(store, item_type)
    config, choices = fill_unset(config, explicit_keys(raw_toml, overrides), stats, budget_s)

Only settings the user did not write in the TOML file or pass with --set are
filled.  Every rule is one row of RULES, stated in terms of the store (item
count, degrees, feature width, edges) and the budget, never per dataset, so a
rule changes in one line.  A rule may read the settings picked (or set) before
it, as `c`.  Each row's `because` says where it was measured: the MovieLens-1M
demo (docs/serving.md), the planted-community e2e store (docs/trainer.md) and
the held-out-edge graphs (docs/quality.md).
"""

from __future__ import annotations

import math
import socket
from dataclasses import dataclass
from typing import Any, Callable

from sagewalk.config import override, to_dict

# An id table of items x hidden_dim float32 rows is on when its training
# footprint fits min(ID_TABLE_BYTES, an eighth of the memory the process may
# use); beyond it the table hashes into as many rows.  Dense Adam on the CPU
# holds, per float of the table, the weight, its gradient, two moments and the
# two temporaries of the update's denominator: six floats (measured at 10M
# items: docs/scale.md).
ID_TABLE_BYTES = 1 << 30
ID_TABLE_FLOATS = 6
# Upper bound on steps a second for "as many epochs as fit" (a GPU-class
# rate); the budget, not this cap, ends a run on slower machines.
MAX_STEPS_PER_SECOND = 100
# The training pairs are drawn once and held in every producer (two int64 per pair).
PAIRS_BYTES = 256 << 20
# An epoch of the hard-negative curriculum: this many positives per item, the
# length every curriculum A/B was measured at, however many are drawn.
EPOCH_PAIRS = 10


@dataclass(frozen=True)
class StoreStats:
    items: int
    feature_dim: int               # 0: the item type has no features
    edges: int                     # edges touching the item type
    item_degree: float             # mean contexts per item
    context_degree: float          # mean items per context node
    memory_limit: int = 0          # bytes this process may use (0: unknown)
    with_contexts: int = -1        # items with at least one edge (-1: unknown, all of them)

    @classmethod
    def of(cls, store, item_type: str) -> "StoreStats":
        items = store.node_types[item_type]
        touching = [e for e in store.edge_types.values() if item_type in (e.src_type, e.dst_type)]
        edges = sum(e.num_edges for e in touching)
        contexts = sum(store.node_types[e.dst_type if e.src_type == item_type else e.src_type]
                       for e in touching)
        feats = store.features(item_type)
        import numpy as np

        from gpu_consumer.prior import item_degrees
        return cls(items=items, feature_dim=0 if feats is None else int(feats.shape[1]),
                   edges=edges, item_degree=edges / max(1, items),
                   context_degree=edges / max(1, contexts), memory_limit=memory_limit(),
                   with_contexts=int(np.count_nonzero(item_degrees(store, item_type))))

    @property
    def paired_items(self) -> int:
        """Items that draw positives: those with a context."""
        return self.items if self.with_contexts < 0 else self.with_contexts

    @property
    def id_table_bytes(self) -> int:
        """What the id table's training footprint may take (see ID_TABLE_BYTES)."""
        if self.memory_limit <= 0:
            return ID_TABLE_BYTES
        return min(ID_TABLE_BYTES, self.memory_limit // 8)

    @property
    def reach(self) -> float:
        """Items one item -> context -> item step can reach, roughly."""
        return self.item_degree * self.context_degree


@dataclass(frozen=True)
class Rule:
    key: str                                        # dotted setting
    pick: Callable[[StoreStats, float, Any], Any]   # (stats, budget_s, config so far) -> value
    because: str


def _pow2(x: float) -> int:
    return 1 << max(0, round(math.log2(max(1.0, x))))


RULES: tuple[Rule, ...] = (
    Rule("trainer.loss", lambda s, b, c: "softmax",
         "the sampled softmax beat the hinge on MovieLens-1M (docs/serving.md)"),
    Rule("trainer.temperature", lambda s, b, c: 0.3,
         "0.3 generalised better than 0.1 on both held-out-edge graphs it was measured on "
         "(docs/quality.md, session 5)"),
    Rule("trainer.candidate_prior", lambda s, b, c: True,
         "a popularity prior beside the cosine: HR@10 beyond neighbours 0.084 -> 0.229 on "
         "synth-10k (docs/quality.md, session 5)"),
    Rule("trainer.prior_source", lambda s, b, c: "degree",
         "tau x log(1 + degree) from the store, added where served: above the learned prior on "
         "all four held-out-edge graphs, which collapsed the cosines on synth-50k "
         "(docs/quality.md, session 6)"),
    Rule("trainer.calibrate_prior", lambda s, b, c: True,
         "how much popularity to add varies by graph (held-out edges wanted 0.25-0.5 of tau on "
         "synth-10k-fine, 4x on ML-1M): the run's held-out pairs pick it at the end "
         "(docs/quality.md, session 16)"),
    Rule("trainer.embedding_dim", lambda s, b, c: 64 if s.items <= 200_000 else 128,
         "64 up to 200k items, 128 beyond"),
    Rule("trainer.hidden_dim", lambda s, b, c: c.trainer.embedding_dim,
         "as wide as the embedding"),
    Rule("trainer.id_embedding_buckets",
         lambda s, b, c: min(s.items, s.id_table_bytes
                             // (4 * ID_TABLE_FLOATS * c.trainer.hidden_dim)),
         "one learned row per item while items x hidden x 24 bytes (the weights, their "
         "gradient, Adam's moments and its temporaries) fits min(1 GiB, an eighth of the "
         "memory this process may use)"),
    Rule("trainer.lr", lambda s, b, c: 0.01 * min(1.0, 64 / c.trainer.hidden_dim),
         "1e-2 at width 64 (demo, e2e), scaled down for wider models"),
    Rule("trainer.warmup_steps", lambda s, b, c: 100,
         "the warm-up the e2e store needed (docs/trainer.md)"),
    Rule("trainer.warmup_fraction", lambda s, b, c: 0.1,
         "so the warm-up ends within 10% of the budget on a slow machine"),
    Rule("trainer.hard_negative_schedule", lambda s, b, c: [0, 1, 2],
         "capped at 2, as the demo: 'as many epochs as fit' must not grow them without bound"),
    Rule("sampler.batch_size", lambda s, b, c: min(512, max(64, _pow2(s.items / 16))),
         "items/16 as a power of two within [64, 512]"),
    Rule("sampler.walk_length", lambda s, b, c: 2 if s.reach >= 100 else 5,
         "2 steps when one step reaches >= 100 items, else 5: the 10-minute bar table ran "
         "with them (docs/quality.md, session 13); one-step walks are level with the id table "
         "(session 11) and 0.299 against 0.279 beyond neighbours with features only on "
         "synth-10k-feat (1.7 SE, one run each, session 13)"),
    Rule("sampler.num_walks", lambda s, b, c: 50 if c.sampler.walk_length == 1 else 10,
         "10 (PinSage's); 50 for one-step walks, so the neighbours kept are ranked by visit "
         "counts, not each drawn once"),
    Rule("sampler.restart_prob", lambda s, b, c: 0.0 if c.sampler.walk_length == 1 else 0.5,
         "0.5 as the demo's short walks; none for one-step walks (a restart would only end "
         "them early)"),
    Rule("sampler.num_neighbors", lambda s, b, c: int(min(10, max(3, s.reach // 2))),
         "10 (the demo's) unless one step reaches fewer than 20 items"),
    Rule("sampler.multisage_num_neighbors", lambda s, b, c: c.sampler.num_neighbors,
         "as many as PinSage's (num_neighbors): MultiSage's layers grow with the square; on "
         "synth-10k at equal wall clock 20 -> 10 gave 3x the steps (docs/quality.md, session "
         "11; its HR figures were embedded with 20 neighbours either way, session 13)"),
    Rule("sampler.multisage_walk_length", lambda s, b, c: max(2, c.sampler.walk_length),
         "at least 2 steps: MultiSage's attention weighs the context a neighbour was reached "
         "through, and one step only reaches the ego's own contexts; with 2-step walks it is "
         "level with PinSage at equal wall clock on synth-10k-feat, features only (0.287 "
         "against 0.279 beyond neighbours; docs/quality.md, session 13)"),
    Rule("sampler.multisage_num_walks", lambda s, b, c: 10,
         "PinSage's 10 walks, with MultiSage's restart 0.1"),
    Rule("sampler.pairs_per_item",
         lambda s, b, c: _pairs_per_item(s, b, c.sampler.batch_size),
         "as many positives as the budget could train on at 100 steps/s, so none need be seen "
         "twice: at 3,000 steps 10 an item (8 passes) scored 0.160 beyond neighbours on "
         "synth-10k-fine, 100 0.257 and 300 0.262 (docs/quality.md, session 19); at most "
         "256 MiB of pairs (16 bytes each) per producer, at least 2 an item"),
    Rule("trainer.batches_per_epoch",
         lambda s, b, c: (0 if c.sampler.pairs_per_item < 4 * EPOCH_PAIRS else
                          math.ceil(s.paired_items * EPOCH_PAIRS / c.sampler.batch_size)),
         "an epoch stays 10 positives per item, the length the hard-negative curriculum "
         "(one more a query each epoch) was measured at, however many are drawn; a whole "
         "pass when fewer than 40 an item are"),
    Rule("sampler.hard_negative_walks", lambda s, b, c: 50,
         "cheaper hard negatives under a budget (the demo's)"),
    Rule("sampler.hard_negative_walk_length", lambda s, b, c: 10, "as the demo"),
    Rule("trainer.epochs",
         lambda s, b, c: max(1, math.ceil(b * MAX_STEPS_PER_SECOND / max(1, _batches(s, c)))),
         "as many as fit: the budget ends the run, this is only the plan's cap"),
    Rule("trainer.checkpoint_every_s", lambda s, b, c: max(5.0, min(60.0, b / 5)),
         "five checkpoints over the budget, 5-60 s apart"),
    Rule("trainer.validate_every", lambda s, b, c: 0 if b < 60 else 200,
         "off under a minute's budget (a pass would eat it)"),
)

# Not from the store, but per run: a run must not share sockets with another.
RUN_RULES: tuple[Rule, ...] = (
    Rule("worker.trainer_endpoint",
         lambda s, b, c: f"ipc://{c.trainer.run_dir}/trainer.sock", "a socket of this run"),
    Rule("worker.control_endpoint",
         lambda s, b, c: f"ipc://{c.trainer.run_dir}/control.sock", "a socket of this run"),
    Rule("monitoring.trainer_port", lambda s, b, c: free_port(), "a free port"),
    Rule("monitoring.sampler_port", lambda s, b, c: free_port(), "a free port"),
    Rule("monitoring.producer_base_port", lambda s, b, c: 0, "free ports"),
)


def _pairs_per_item(stats: StoreStats, budget_s: float, batch_size: int) -> int:
    """Positives per item: what the budget could train on at MAX_STEPS_PER_SECOND
    (at least EPOCH_PAIRS), within PAIRS_BYTES and at least 2."""
    items = max(1, stats.items)
    trainable = math.ceil(budget_s * MAX_STEPS_PER_SECOND * batch_size / items)
    return int(max(2, min(PAIRS_BYTES // (16 * items), max(EPOCH_PAIRS, trainable))))


def _batches(stats: StoreStats, config) -> int:
    """Batches in one epoch, roughly: pairs_per_item positives per item."""
    per_epoch = config.trainer.batches_per_epoch
    return per_epoch or math.ceil(stats.items * config.sampler.pairs_per_item
                                  / config.sampler.batch_size)


def memory_limit() -> int:
    from sampler.paging import memory_limit as limit
    return limit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def explicit_keys(raw: dict, overrides=()) -> set[str]:
    """Dotted settings the user set: the TOML's tables' keys and --set items."""
    keys = {f"{section}.{key}" for section, table in raw.items() if isinstance(table, dict)
            for key in table}
    keys |= {item.partition("=")[0].strip() for item in overrides}
    return keys


def fill_unset(config, explicit: set[str], stats: StoreStats, budget_s: float,
               rules=RULES + RUN_RULES):
    """`config` with every rule's setting that is not in `explicit` picked;
    and the choices, [{"setting", "value", "because"}], in rule order."""
    choices = []
    for rule in rules:
        if rule.key in explicit:
            continue
        value = rule.pick(stats, budget_s, config)
        config = override(config, f"{rule.key}={_toml(value)}")
        section, key = rule.key.split(".")
        choices.append({"setting": rule.key, "value": to_dict(config)[section][key],
                        "because": rule.because})
    return config, choices


def _toml(value) -> str:
    import json
    return json.dumps(value)
