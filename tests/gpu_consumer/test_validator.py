"""Validator: passes on a fixed held-out sample, early stopping, checkpoint state."""

from __future__ import annotations

from test_session import session, store  # noqa: F401 (store: fixture)

from gpu_consumer.validator import Validator


def test_an_unchanged_model_spends_the_patience_and_the_record_round_trips(store, tmp_path):
    s = session(store, tmp_path, "trainer.early_stopping_patience=2")
    v = Validator(s.builder, store.node_types["item"], s.cfg)
    first = v.validate(s.trainer.embed, step=2)
    held_out = len(s.builder.validation_pairs()[0])
    assert first["step"] == 2 and first["pairs"] == min(20, held_out)
    assert 0.0 <= first["hit_rate"] <= 1.0
    assert v.best == first["hit_rate"] and v.bad_passes == 0 and not v.patience_spent
    for step in (4, 6):   # the same weights: never better than the first pass
        assert v.validate(s.trainer.embed, step=step)["hit_rate"] == first["hit_rate"]
    assert v.bad_passes == 2 and v.patience_spent and v.validated_at(6)
    again = Validator(s.builder, store.node_types["item"], s.cfg)
    again.load(v.state())
    assert again.history == v.history and again.best == v.best and again.patience_spent
