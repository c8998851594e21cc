"""worker/producer.py: a producer stopped while a batch is still being built."""

from __future__ import annotations

import logging
import sys
import threading
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from synthetic import SyntheticBuilder  # noqa: E402

from worker.config import WorkerConfig  # noqa: E402
from worker.producer import Producer, ProducerSpec  # noqa: E402
from worker.ticket import Ticket  # noqa: E402


class HeldBuilder(SyntheticBuilder):
    """Builds only once `release` is set, so the producer can be stopped mid-build."""

    def __init__(self):
        super().__init__()
        self.started, self.release = threading.Event(), threading.Event()

    def build(self, ticket):
        self.started.set()
        self.release.wait(30)
        return super().build(ticket)


def test_a_build_outlasting_the_drain_ends_the_producer_cleanly(tmp_path, caplog):
    # A batch that takes longer than drain_s (minutes on a capped, disk-bound
    # store) must not turn a clean stop into a failed producer: its ticket was
    # never sent, so the trainer reissues it.
    cfg = WorkerConfig(trainer_endpoint=f"ipc://{tmp_path}/t.sock", heartbeat_s=0.1,
                       liveness_s=1.0, credits=2)
    builder = HeldBuilder()
    producer = Producer(ProducerSpec(name="p0", endpoint=cfg.trainer_endpoint, worker=cfg,
                                     drain_s=0.05), builder)
    codes = []
    thread = threading.Thread(target=lambda: codes.append(producer.run()), daemon=True)
    with caplog.at_level(logging.INFO, logger="worker.producer"):
        thread.start()
        producer._todo.put((producer.session, Ticket(epoch=0, batch=0, seed=1, hard_negatives=0)))
        assert builder.started.wait(10)
        producer.stop()
        deadline = time.monotonic() + 10       # run() has left its loop and is closing
        while None not in list(producer._todo.queue) and time.monotonic() < deadline:
            time.sleep(0.01)
        builder.release.set()
        thread.join(10)
    assert not thread.is_alive()
    assert codes == [0]
    assert not [r for r in caplog.records if r.levelno >= logging.ERROR]
