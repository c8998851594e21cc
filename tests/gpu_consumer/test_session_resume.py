"""Resume through TrainingSession's checkpoint path: bit-for-bit equality with
the uninterrupted run, a damaged only checkpoint refused, save failures counted."""

import pytest
import torch

from gpu_consumer import checkpoint
from monitoring import hook
from test_session import InProcessBatches, session, store  # noqa: F401 (store: fixture)


def _train(s):
    s.run(InProcessBatches(s.builder, s.plan, s.run_state.cursor))
    return s


def test_stop_checkpoint_and_resume_equals_the_uninterrupted_run_bit_for_bit(store, tmp_path):
    whole = _train(session(store, tmp_path / "a"))
    # Stopped as a signal stops it (trainer.max_steps would change the lr plan).
    cut = session(store, tmp_path / "b")
    batches = InProcessBatches(cut.builder, cut.plan)

    def four_then_stop():
        for n, batch in enumerate(batches, 1):
            yield batch
            if n == 4:
                cut.stop("signal")

    class Stream:
        def __iter__(self):
            return four_then_stop()

        def done(self, ticket):
            batches.done(ticket)

        def state_dict(self):
            return batches.state_dict()

    cut.run(Stream())
    assert cut.trainer.step == 4
    cut.save_checkpoint()
    resumed = session(store, tmp_path / "b")
    assert resumed.restore()
    _train(resumed)
    assert resumed.trainer.step == whole.trainer.step == 6
    for k, v in whole.trainer.model.state_dict().items():
        assert torch.equal(resumed.trainer.model.state_dict()[k], v), k
    got, want = resumed.trainer.optimizer.state_dict(), whole.trainer.optimizer.state_dict()
    for i, st in want["state"].items():
        for name, value in st.items():
            assert torch.equal(torch.as_tensor(got["state"][i][name]), torch.as_tensor(value))


def test_a_damaged_only_checkpoint_refuses_to_start(store, tmp_path):
    s = _train(session(store, tmp_path, "trainer.max_steps=2"))
    s.save_checkpoint()
    (only,) = checkpoint.list_checkpoints(tmp_path / "run")
    only.write_bytes(only.read_bytes()[:-10])
    with pytest.raises(checkpoint.NoIntactCheckpoint, match="--fresh"):
        session(store, tmp_path).restore()


class Counting:
    def __init__(self):
        self.counts = {}

    def inc(self, name, value=1.0, **labels):
        self.counts[name] = self.counts.get(name, 0) + value

    def set(self, name, value, **labels):
        pass

    def observe(self, name, value, **labels):
        pass


def test_a_failed_save_is_logged_and_counted(store, tmp_path, monkeypatch, caplog):
    s = session(store, tmp_path)
    counting = Counting()
    previous = hook.install(counting)
    try:
        def full(*_a, **_k):
            raise OSError(28, "No space left on device")
        monkeypatch.setattr(checkpoint, "write_atomically", full)
        s.save_checkpoint()
    finally:
        hook.install(previous)
    assert counting.counts.get("sagewalk_checkpoint_failures_total") == 1
    assert "No space left on device" in caplog.text
