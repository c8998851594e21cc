"""Exactly-once, bit for bit: a trainer killed with SIGKILL mid-run and
restarted ends with the same model.pt as the run left alone (same seeds, one
producer so batches arrive in ticket order, one torch thread)."""

from __future__ import annotations

import pytest
import torch
from test_faults import Daemons


def _final_state(d: Daemons, kill_after: int | None) -> dict:
    d.write_config(producers=1, epochs=6)
    trainer = d.start("trainer")
    sampler = d.start("sampler")
    if kill_after is not None:
        checkpoints = d.tmp / "run" / "checkpoints"
        d.wait_for(lambda: len(d.audit()) >= kill_after and checkpoints.is_dir()
                   and any(checkpoints.glob("checkpoint-*.pt")), 90, "a checkpoint")
        trainer.kill()
        trainer.wait()
        trainer = d.start("trainer")
    assert trainer.wait(180) == 0, d.text()[-3000:]
    if kill_after is not None:
        assert "resumed from" in d.text()
    summary = d.summary()
    assert summary["stop_reason"] == "completed" and summary["duplicates"] == 0
    sampler.terminate()
    sampler.wait(30)
    return torch.load(d.tmp / "run" / "model.pt", weights_only=True)["state_dict"]


@pytest.mark.slow
def test_trainer_kill9_and_resume_ends_with_the_uninterrupted_model_bit_for_bit(tmp_path):
    runs = {}
    for name, kill_after in (("alone", None), ("killed", 40)):
        d = Daemons(tmp_path / name, epochs=6)
        try:
            runs[name] = _final_state(d, kill_after)
        finally:
            d.cleanup()
    assert runs["alone"].keys() == runs["killed"].keys()
    for key, value in runs["alone"].items():
        assert torch.equal(value, runs["killed"][key]), key
