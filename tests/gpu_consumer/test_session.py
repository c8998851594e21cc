"""TrainingSession on a real store and the sampler's real BatchBuilder; batches
handed over in process in plan order (the socket path is tests/e2e/test_training.py)."""

import numpy as np
import pytest
import torch

from gpu_consumer.checkpoint import list_checkpoints
from gpu_consumer.layers import ModelError
from gpu_consumer.model import load_model
from gpu_consumer.session import TrainingSession
from gpu_consumer.tensors import TensorBatch
from sagewalk.config import load


class InProcessBatches:
    """The plan's tickets built right here, in order; `done` and `state_dict`
    as the stream has them (the cursor is the list of done ticket keys)."""

    def __init__(self, builder, plan, cursor=None):
        self.builder, self.plan = builder, plan
        self.done_keys = [tuple(k) for k in (cursor or {}).get("done", [])]
        self.tickets = []

    def __iter__(self):
        for epoch in range(self.plan.epochs):
            for batch in range(self.plan.num_batches(epoch)):
                if (epoch, batch) in self.done_keys:
                    continue
                ticket = self.plan.ticket(epoch, batch)
                self.tickets.append(ticket)
                yield TensorBatch.from_minibatch(self.builder.build(ticket))

    def done(self, ticket):
        self.done_keys.append(ticket.key)

    def state_dict(self):
        return {"done": [list(k) for k in self.done_keys]}


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    from graphstore import build_from_arrays
    from graphstore.synth import generate
    g = generate(3000, 120, 200, 3, seed=2, p_in=0.9)
    return build_from_arrays(tmp_path_factory.mktemp("s") / "store",
                             edges={"rates": ("item", "user", g.items, g.users)},
                             node_counts={"item": 120, "user": 200},
                             features={"item": np.random.default_rng(0).standard_normal(
                                 (120, 4)).astype(np.float32)})


def session(store, tmp_path, *overrides):
    from worker.assemble import BatchBuilder
    config = load(None, [
        "trainer.hidden_dim=16", "trainer.embedding_dim=8", "trainer.epochs=2",
        "trainer.batches_per_epoch=3", "trainer.validate_every=2", "trainer.warmup_steps=1",
        "trainer.validation_queries=20", "trainer.checkpoint_every_s=1000",
        f"trainer.run_dir=\"{tmp_path / 'run'}\"", "sampler.batch_size=16",
        "sampler.easy_negatives=16", "sampler.num_walks=4", "sampler.walk_length=4",
        "sampler.num_neighbors=4", *overrides])
    return TrainingSession(config, store, BatchBuilder(store, config.sampler))


def test_runs_the_plan_with_the_curriculum_in_its_tickets(store, tmp_path):
    s = session(store, tmp_path)
    stream = InProcessBatches(s.builder, s.plan)
    s.run(stream)
    assert s.trainer.step == 6 and s.stop_reason == "completed"
    assert s.run_state.epoch_done == {0: 3, 1: 3}
    assert [t.hard_negatives for t in stream.tickets] == [0, 0, 0, 1, 1, 1]
    assert [v["step"] for v in s.validator.history] == [2, 4, 6]
    assert all(0.0 <= v["hit_rate"] <= 1.0 and v["chance"] > 0 for v in s.validator.history)


def test_finish_checkpoints_exports_and_a_new_session_resumes(store, tmp_path):
    s = session(store, tmp_path)
    stream = InProcessBatches(s.builder, s.plan)
    s.run(stream)
    figures = s.finish()
    assert figures["steps"] == 6 and figures["model_path"].endswith("model.pt")
    assert [v["step"] for v in figures["validation"]] == [2, 4, 6]  # no second pass at 6
    assert len(list_checkpoints(tmp_path / "run")) == 1
    exported = load_model(tmp_path / "run")
    for k, v in s.trainer.model.state_dict().items():
        assert torch.equal(exported.state_dict()[k], v), k
    again = session(store, tmp_path)
    assert again.restore()
    assert again.trainer.step == 6 and again.run_state.epoch_done == {0: 3, 1: 3}
    assert again.run_state.cursor == stream.state_dict() and len(again.validator.history) == 3
    for k, v in s.trainer.model.state_dict().items():
        assert torch.equal(again.trainer.model.state_dict()[k], v), k


def test_interrupted_run_resumes_where_it_stopped(store, tmp_path):
    s = session(store, tmp_path, "trainer.max_steps=4")
    s.run(InProcessBatches(s.builder, s.plan))
    assert s.stop_reason == "max_steps" and s.trainer.step == 4
    s.finish(export=False)
    assert [v["step"] for v in s.validator.history] == [2, 4]
    resumed = session(store, tmp_path)
    resumed.restore()
    stream = InProcessBatches(resumed.builder, resumed.plan, resumed.run_state.cursor)
    resumed.run(stream)
    assert [t.key for t in stream.tickets] == [(1, 1), (1, 2)]
    assert resumed.trainer.step == 6 and resumed.run_state.epoch_done == {0: 3, 1: 3}


def test_early_stopping_after_passes_without_improvement(store, tmp_path):
    # a learning rate this small cannot change the ranking: no pass improves on the first
    s = session(store, tmp_path, "trainer.validate_every=1", "trainer.early_stopping_patience=2",
                "trainer.lr=1e-12")
    s.run(InProcessBatches(s.builder, s.plan))
    assert s.stop_reason == "early_stopping" and s.trainer.step == 3


def test_stop_ends_the_loop_after_the_current_step(store, tmp_path):
    s = session(store, tmp_path)
    s.stop("SIGTERM")  # what the daemon's signal handler calls
    s.run(InProcessBatches(s.builder, s.plan))
    assert s.trainer.step == 0 and s.stop_reason == "SIGTERM"


def test_checkpoint_of_another_world_size_is_refused_and_plans_split_by_rank(store, tmp_path):
    from gpu_consumer.distributed import Rank
    from gpu_consumer.session import CheckpointMismatch, TrainingSession
    s = session(store, tmp_path)
    s.finish(export=False)
    rank1 = TrainingSession(s.config, store, s.builder, rank=Rank(1, 2))
    with pytest.raises(CheckpointMismatch, match="written by 1 trainer rank"):
        rank1.restore()
    # 3 batches per epoch over 2 ranks: both take 2 steps an epoch, rank 1 trains 1 batch
    assert list(rank1.plan.batches(0)) == [1] and rank1.batches_in(0) == 1
    assert rank1.planned_steps() == s.planned_steps() - 2 == 4
    assert rank1.plan.ticket(0, 1) == s.plan.ticket(0, 1)


def test_more_batches_per_epoch_than_a_pass_has_is_refused(store, tmp_path):
    from sagewalk.errors import ConfigError
    with pytest.raises(ConfigError, match="trainer.batches_per_epoch = 10000, but one pass"):
        session(store, tmp_path, "trainer.batches_per_epoch=10000")


def test_checkpoint_of_another_model_is_refused(store, tmp_path):
    s = session(store, tmp_path)
    s.finish(export=False)
    other = session(store, tmp_path, "trainer.hidden_dim=32")
    with pytest.raises(ModelError, match="another model"):
        other.restore()


def test_finish_validates_the_final_model_unless_stopped_by_a_signal(store, tmp_path):
    s = session(store, tmp_path, "trainer.validate_every=4")
    s.run(InProcessBatches(s.builder, s.plan))
    assert [v["step"] for v in s.finish(export=False)["validation"]] == [4, 6]
    s = session(store, tmp_path / "b", "trainer.validate_every=4", "trainer.max_steps=5")
    s.run(InProcessBatches(s.builder, s.plan))
    s.stop_reason = "SIGTERM"
    assert [v["step"] for v in s.finish(export=False)["validation"]] == [4]


class StepClock:
    """A clock that moves `per_batch` seconds each time a batch is handed over:
    the session's budget sees steps of a known length, whatever the machine."""

    def __init__(self, per_batch):
        self.now, self.per_batch = 1000.0, per_batch

    def __call__(self):
        return self.now

    def stream(self, batches):
        for tbatch in batches:
            self.now += self.per_batch
            yield tbatch


class ClockedBatches(InProcessBatches):
    def __init__(self, clock, *args):
        super().__init__(*args)
        self.clock = clock

    def __iter__(self):
        return self.clock.stream(super().__iter__())


def budget_session(store, tmp_path, clock, *overrides):
    from worker.assemble import BatchBuilder
    s = session(store, tmp_path, "trainer.epochs=50", "trainer.validate_every=0",
                "trainer.lr=0.01", "trainer.min_lr_ratio=0.1", *overrides)
    return TrainingSession(s.config, store, BatchBuilder(store, s.config.sampler), clock=clock)


def test_time_budget_stops_at_the_final_rate_and_records_the_cut_epoch(store, tmp_path):
    clock = StepClock(per_batch=1.0)   # 10 s budget, 1 s a step: the plan's 150 steps do not fit
    s = budget_session(store, tmp_path, clock, "trainer.time_budget_s=10")
    s.run(ClockedBatches(clock, s.builder, s.plan))
    assert s.stop_reason == "time_budget"
    assert 8 <= s.trainer.step <= 10
    assert s.last_lr == pytest.approx(0.001)       # min_lr_ratio * lr: the decay completed
    figures = s.finish(export=False)
    assert figures["lr_final"] == pytest.approx(0.001) and figures["time_budget_s"] == 10
    assert figures["epochs_complete"] == s.trainer.step // 3
    cut = figures["epoch_cut_short"]
    if s.trainer.step % 3:
        assert cut == {"epoch": s.trainer.step // 3, "batches_done": s.trainer.step % 3,
                       "batches_planned": 3, "complete": False}


def test_a_plan_shorter_than_the_budget_completes_with_the_decay_done(store, tmp_path):
    clock = StepClock(per_batch=1.0)
    s = budget_session(store, tmp_path, clock, "trainer.time_budget_s=1000", "trainer.epochs=2")
    s.run(ClockedBatches(clock, s.builder, s.plan))
    assert s.stop_reason == "completed" and s.trainer.step == 6
    assert s.last_lr == pytest.approx(0.001)
    assert s.finish(export=False)["epoch_cut_short"] is None


def test_resume_carries_the_budget_spent(store, tmp_path):
    clock = StepClock(per_batch=1.0)
    s = budget_session(store, tmp_path, clock, "trainer.time_budget_s=10", "trainer.max_steps=4")
    s.run(ClockedBatches(clock, s.builder, s.plan))
    assert s.stop_reason == "max_steps" and s.elapsed_seconds() == pytest.approx(4.0)
    s.finish(export=False)
    clock.now += 500.0                            # the trainer was down: not budget time
    resumed = budget_session(store, tmp_path, clock, "trainer.time_budget_s=10")
    assert resumed.restore() and resumed.run_state.trained_seconds == pytest.approx(4.0)
    resumed.run(ClockedBatches(clock, resumed.builder, resumed.plan, resumed.run_state.cursor))
    assert resumed.stop_reason == "time_budget" and resumed.trainer.step <= 10
    assert resumed.last_lr == pytest.approx(0.001)
    assert resumed.elapsed_seconds() == pytest.approx(4.0 + resumed.trainer.step - 4)
    resumed.finish(export=False)
    spent = budget_session(store, tmp_path, clock, "trainer.time_budget_s=10")
    spent.restore()
    spent.run(ClockedBatches(clock, spent.builder, spent.plan, spent.run_state.cursor))
    assert spent.stop_reason == "time_budget" and spent.trainer.step == resumed.trainer.step


class StarvedBatches(ClockedBatches):
    """Batches until `after`, then none: the producers fall silent while the
    clock runs, as a stream waiting on slow producers does (give_up is what
    BatchStream checks between its waits)."""

    def __init__(self, clock, after, *args):
        super().__init__(clock, *args)
        self.after, self.give_up, self.gave_up = after, None, False

    def __iter__(self):
        for i, tbatch in enumerate(super().__iter__()):
            if i == self.after:
                break
            yield tbatch
        while not (self.give_up is not None and self.give_up()):
            self.clock.now += 7.0
        self.gave_up = True


def test_a_budget_spent_waiting_for_data_stops_the_run(store, tmp_path):
    clock = StepClock(per_batch=1.0)
    s = budget_session(store, tmp_path, clock, "trainer.time_budget_s=100")
    s.run(StarvedBatches(clock, 3, s.builder, s.plan))
    assert s.stop_reason == "time_budget" and s.trainer.step == 3
    assert s.run_state.budget_spent
    assert 100 <= s.elapsed_seconds() < 107
    # without a budget the stream is not told to give up
    free = budget_session(store, tmp_path / "free", clock, "trainer.max_steps=2")
    stream = StarvedBatches(clock, 5, free.builder, free.plan)
    free.run(stream)
    assert stream.give_up is None and free.stop_reason == "max_steps"


def test_finish_calibrates_the_degree_prior_and_exports_the_calibrated_table(store, tmp_path):
    from gpu_consumer.prior import degree_prior, degree_scale
    from gpu_consumer.validate import PRIOR_FACTORS
    s = session(store, tmp_path, "trainer.candidate_prior=true", "trainer.prior_source=degree",
                "trainer.calibrate_prior=true")
    s.run(InProcessBatches(s.builder, s.plan))
    figures = s.finish()
    calibration = figures["prior_calibration"]
    f = calibration["factor"]
    assert f in PRIOR_FACTORS and calibration["factors"] == list(PRIOR_FACTORS)
    assert max(calibration["mrr_by_factor"]) == calibration["mrr_by_factor"][
        PRIOR_FACTORS.index(f)]
    scale = degree_scale(s.cfg.temperature, s.config.sampler.negative_distribution)
    expected = torch.from_numpy(degree_prior(store, "item", scale) * f)
    exported = load_model(tmp_path / "run")
    assert torch.allclose(exported.head.prior_table, expected)
    assert exported.spec.prior_scale == pytest.approx(scale * f)
    # The final validation pass scores the calibrated model.
    assert figures["validation"][-1]["step"] == 6
    # Calibrating again starts from the store's table, not the scaled one.
    assert s.calibrate_prior()["factor"] == f
    assert torch.allclose(s.trainer.model.head.prior_table, expected)


def test_no_calibration_unless_asked_or_with_the_prior_in_the_loss(store, tmp_path):
    base = ["trainer.candidate_prior=true", "trainer.prior_source=degree"]
    for extra in ([], ["trainer.calibrate_prior=true", "trainer.prior_in_loss=true"]):
        s = session(store, tmp_path / str(len(extra)), *base, *extra)
        s.run(InProcessBatches(s.builder, s.plan))
        table = s.trainer.model.head.prior_table.clone()
        assert s.finish()["prior_calibration"] is None
        assert torch.equal(s.trainer.model.head.prior_table, table)
