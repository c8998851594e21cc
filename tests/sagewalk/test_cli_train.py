"""`sagewalk train`: the rule table fills only what the user left unset."""

from __future__ import annotations

import json

import numpy as np
import pytest

from sagewalk import autoplan
from sagewalk.cli import main
from sagewalk.config import load


def stats(items=3883, item_degree=250.0, context_degree=160.0, feature_dim=0, memory=0):
    return autoplan.StoreStats(items=items, feature_dim=feature_dim,
                               edges=int(items * item_degree), item_degree=item_degree,
                               context_degree=context_degree, memory_limit=memory)


def test_rules_follow_the_store_and_the_budget():
    config, choices = autoplan.fill_unset(load(None), set(), stats(), 600.0)
    t, s = config.trainer, config.sampler
    assert (t.loss, t.temperature, t.embedding_dim, t.hidden_dim) == ("softmax", 0.3, 64, 64)
    assert t.id_embedding_buckets == 3883 and s.batch_size == 256
    assert (s.walk_length, s.num_walks, s.restart_prob) == (2, 10, 0.5)
    one_step, _ = autoplan.fill_unset(load(None, ["sampler.walk_length=1"]),
                                      {"sampler.walk_length"}, stats(), 600.0)
    assert (one_step.sampler.num_walks, one_step.sampler.restart_prob) == (50, 0.0)
    assert s.num_neighbors == s.multisage_num_neighbors == 10
    assert (s.multisage_walk_length, s.multisage_num_walks) == (2, 10)
    assert t.warmup_fraction == 0.1 and t.hard_negative_schedule == (0, 1, 2)
    assert t.candidate_prior is True and t.prior_source == "degree"
    # positives: what 600 s at 100 steps of 256 could train on (3,956 an item), under
    # 256 MiB (4,320); epochs of the curriculum stay 10 an item
    assert s.pairs_per_item == 3956 and t.batches_per_epoch == -(-3883 * 10 // 256)
    short, _ = autoplan.fill_unset(load(None), set(), stats(), 3.0)
    assert short.sampler.pairs_per_item == 20 and short.trainer.batches_per_epoch == 0
    sparse, _ = autoplan.fill_unset(load(None), set(), stats(items=10**6, item_degree=2.0,
                                                             context_degree=3.0), 30.0)
    assert sparse.sampler.walk_length == 5 and sparse.sampler.num_neighbors == 3
    assert sparse.sampler.multisage_num_neighbors == 3
    assert sparse.sampler.multisage_walk_length == 5     # as long as PinSage's where longer
    assert (sparse.sampler.num_walks, sparse.sampler.restart_prob) == (10, 0.5)
    assert sparse.trainer.embedding_dim == 128 and sparse.trainer.lr == pytest.approx(0.005)
    assert sparse.sampler.batch_size == 512 and sparse.trainer.validate_every == 0
    huge, _ = autoplan.fill_unset(load(None), set(), stats(items=10**7), 600.0)
    assert huge.sampler.pairs_per_item == 2     # 10 per item would pass 256 MiB
    assert huge.trainer.batches_per_epoch == 0
    assert sparse.sampler.pairs_per_item == 10  # 30 s could not train on more, nor 256 MiB hold
    # the id table's training footprint (24 bytes a float at width 128) within 1 GiB,
    # and within an eighth of a memory cap
    assert huge.trainer.id_embedding_buckets == (1 << 30) // (24 * 128)
    capped, _ = autoplan.fill_unset(load(None), set(), stats(items=10**7, memory=4 << 30), 600.0)
    assert capped.trainer.id_embedding_buckets == (4 << 30) // 8 // (24 * 128)
    roomy, _ = autoplan.fill_unset(load(None), set(), stats(memory=64 << 30), 600.0)
    assert roomy.trainer.id_embedding_buckets == 3883
    assert {c["setting"] for c in choices} == {r.key for r in autoplan.RULES + autoplan.RUN_RULES}
    assert all(c["because"] for c in choices)


def test_an_epoch_counts_only_the_items_that_draw_positives(tmp_path):
    """Items without a context draw no positives, so an epoch of 10 an item
    counts the others: otherwise it could ask for more batches than a pass
    over the drawn pairs has."""
    from graphstore import build_from_arrays, open_store
    build_from_arrays(tmp_path / "s", edges={"e": ("item", "user", np.arange(40) % 10,
                                                   np.arange(40) % 7)},
                      node_counts={"item": 300, "user": 7})
    st_ = autoplan.StoreStats.of(open_store(tmp_path / "s"), "item")
    assert (st_.items, st_.with_contexts, st_.paired_items) == (300, 10, 10)
    config, _ = autoplan.fill_unset(load(None), set(), st_, 600.0)
    assert config.sampler.pairs_per_item >= 40
    assert config.trainer.batches_per_epoch == -(-10 * 10 // config.sampler.batch_size)


def test_only_unset_settings_are_picked():
    raw = {"trainer": {"loss": "max_margin", "hidden_dim": 32}, "sampler": {}}
    explicit = autoplan.explicit_keys(raw, ["sampler.batch_size=100"])
    assert explicit == {"trainer.loss", "trainer.hidden_dim", "sampler.batch_size"}
    base = load(None, ["trainer.loss=max_margin", "trainer.hidden_dim=32",
                       "sampler.batch_size=100"])
    config, choices = autoplan.fill_unset(base, explicit, stats(), 600.0)
    assert (config.trainer.loss, config.trainer.hidden_dim, config.sampler.batch_size) == \
        ("max_margin", 32, 100)
    assert config.trainer.lr == pytest.approx(0.01)       # the rule sees the user's width
    assert explicit.isdisjoint(c["setting"] for c in choices)
    # the walk count and restart follow a walk length the user set
    longer = autoplan.explicit_keys({}, ["sampler.walk_length=3"])
    walks, _ = autoplan.fill_unset(load(None, ["sampler.walk_length=3"]), longer, stats(), 60.0)
    assert (walks.sampler.walk_length, walks.sampler.num_walks, walks.sampler.restart_prob) == \
        (3, 10, 0.5)


def test_dry_run_prints_the_choices_and_writes_the_config(tmp_path, capsys):
    from graphstore import build_from_arrays
    build_from_arrays(tmp_path / "store", edges={"e": ("item", "user", np.arange(40) % 20,
                                                       np.arange(40) % 7)},
                      node_counts={"item": 20, "user": 7})
    cfg = tmp_path / "c.toml"
    cfg.write_text(f'[graphstore]\npath = "{tmp_path / "store"}"\n[trainer]\nlr = 0.5\n')
    assert main(["train", "--config", str(cfg), "--minutes", "2", "--dry-run",
                 "--run-dir", str(tmp_path / "run")]) == 0
    out = capsys.readouterr().out
    assert "picked from the store: sampler.batch_size = 64" in out and "trainer.lr =" not in out
    resolved = load(tmp_path / "run" / "train.toml")
    assert resolved.trainer.time_budget_s == 120.0 and resolved.trainer.lr == 0.5
    assert main(["train", "--config", str(cfg), "--minutes", "0"]) == 2
