"""The demo's generated training config: sized to the budget, valid as written."""

from __future__ import annotations

from sagewalk import demo
from sagewalk.config import load


def plan(tmp_path, minutes):
    return demo.DemoPlan(out=tmp_path, cache=tmp_path / "cache", minutes=minutes,
                         dashboard=False)


def test_planned_epochs_follow_the_budget():
    for minutes in (1, 2.5, 10, 30):
        planned = demo.planned_epochs(minutes) * demo.BATCHES_PER_EPOCH
        assert abs(planned - minutes * demo.BATCHES_PER_MINUTE) <= demo.BATCHES_PER_EPOCH / 2
    assert demo.planned_epochs(0.01) == 1      # a tiny budget still trains


def test_config_plans_the_budget_and_trains_with_the_softmax_loss(tmp_path):
    path = demo.write_config(plan(tmp_path, 5), num_items=3883, dataset=tmp_path)
    config = load(path)
    assert config.trainer.loss == "softmax"
    assert config.trainer.epochs == demo.planned_epochs(5)
    assert config.trainer.batches_per_epoch == demo.BATCHES_PER_EPOCH
    assert config.trainer.id_embedding_buckets == 3883
    # beta = tau * log(1 + degree) added at scoring: 0.1773 / 0.1298 -> 0.1937 / 0.1412
    assert config.trainer.candidate_prior and config.trainer.prior_source == "degree"


def test_overrides_win_over_the_planned_config(tmp_path):
    p = demo.DemoPlan(out=tmp_path, cache=tmp_path, minutes=5, dashboard=False,
                      overrides=("trainer.loss=max_margin", "trainer.epochs=7"))
    config = load(demo.write_config(p, num_items=10, dataset=tmp_path))
    assert (config.trainer.loss, config.trainer.epochs) == ("max_margin", 7)
