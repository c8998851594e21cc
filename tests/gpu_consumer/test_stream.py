"""BatchStream + Coordinator with producers running as threads in this process."""

from __future__ import annotations

import sys
import threading
import time
from pathlib import Path


sys.path.insert(0, str(Path(__file__).parents[1] / "worker"))
from synthetic import SyntheticBuilder, synthetic_batch  # noqa: E402

from gpu_consumer.stream import BatchStream, EpochPlan  # noqa: E402
from worker.config import WorkerConfig  # noqa: E402
from worker.producer import Producer, ProducerSpec  # noqa: E402


def worker_cfg(tmp_path, **kw):
    base = dict(trainer_endpoint=f"ipc://{tmp_path}/t.sock", heartbeat_s=0.1, liveness_s=1.0,
                credits=2)
    base.update(kw)
    return WorkerConfig(**base)


class ThreadProducer:
    def __init__(self, cfg, name, builder=None):
        spec = ProducerSpec(name=name, endpoint=cfg.trainer_endpoint, worker=cfg)
        self.producer = Producer(spec, builder or SyntheticBuilder())
        self.thread = threading.Thread(target=self.producer.run, daemon=True)
        self.thread.start()

    def stop(self):
        self.producer.stop()
        self.thread.join(10)
        assert not self.thread.is_alive()


def consume(stream, on_batch=None, limit=None):
    """Keys of the batches trained, marking each done; stops after `limit`."""
    keys = []
    for tbatch in stream:
        keys.append(tbatch.ticket.key)
        if on_batch:
            on_batch(tbatch)
        stream.done(tbatch.ticket)
        if len(keys) == limit:
            break
    return keys


def plan(epochs=2, batches=10, hard=lambda e: e):
    return EpochPlan(epochs, num_batches=lambda e: batches, hard_negatives=hard, base_seed=7)


def test_two_producers_cover_every_ticket_once(tmp_path):
    cfg = worker_cfg(tmp_path)
    with BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan()) as stream:
        producers = [ThreadProducer(cfg, f"p{i}") for i in range(2)]
        seen = []
        keys = consume(stream, lambda tb: seen.append(tb))
        for p in producers:
            p.stop()
        summary = stream.summary()
    assert sorted(keys) == [(e, b) for e in range(2) for b in range(10)]
    assert summary["batches_accepted"] == 20 and summary["duplicates"] == 0
    # the tensors are exactly the ticket's batch, and the curriculum travels in the ticket
    for tb in seen:
        expected = synthetic_batch(tb.ticket)
        assert tb.ticket.hard_negatives == tb.ticket.epoch
        assert (tb.features.numpy() == expected.features).all()
    assert stream.state_dict() == {"version": 1, "epoch": 2, "done": {}}


def test_cursor_resumes_where_it_stopped(tmp_path):
    cfg = worker_cfg(tmp_path)
    with BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan()) as stream:
        producer = ThreadProducer(cfg, "p0")
        first = consume(stream, limit=13)
        cursor = stream.state_dict()
        producer.stop()
    with BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan(), cursor=cursor) as stream:
        producer = ThreadProducer(cfg, "p0")
        second = consume(stream)
        producer.stop()
    assert sorted(first + second) == [(e, b) for e in range(2) for b in range(10)]


def test_wrong_digest_is_refused_and_counted(tmp_path, caplog):
    cfg = worker_cfg(tmp_path)
    stream = BatchStream(cfg, digest="the-trainer-digest", plan=plan(1, 2)).start()
    producer = ThreadProducer(cfg, "p0")
    deadline = time.monotonic() + 5
    while stream.summary()["rejected"].get("wrong_digest", 0) < 1 and time.monotonic() < deadline:
        time.sleep(0.05)
    producer.stop()
    stream.close()
    assert stream.summary()["rejected"]["wrong_digest"] >= 1
    assert stream.summary()["batches_accepted"] == 0
    text = caplog.text
    assert "the-trainer-digest" in text and SyntheticBuilder.digest in text


def test_slow_consumer_bounds_what_is_in_flight(tmp_path):
    cfg = worker_cfg(tmp_path, credits=2)
    stream = BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan(1, 200), prefetch=3)
    stream.start()
    producers = [ThreadProducer(cfg, f"p{i}") for i in range(2)]
    time.sleep(1.0)  # nobody consumes: producers may only fill credits + prefetch
    issued = stream.summary()["tickets_issued"]
    assert issued <= 3 + 2 * 2
    assert stream._queue.qsize() <= 3 + 2 * 2
    keys = consume(stream)
    for p in producers:
        p.stop()
    stream.close()
    assert sorted(keys) == [(0, b) for b in range(200)]


def test_producer_survives_a_trainer_restart(tmp_path):
    cfg = worker_cfg(tmp_path)
    stream = BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan(1, 40)).start()
    producer = ThreadProducer(cfg, "p0", SyntheticBuilder(delay_s=0.01))
    first = consume(stream, limit=10)
    cursor = stream.state_dict()
    stream.close()  # the trainer goes away with tickets outstanding
    time.sleep(0.3)
    stream = BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan(1, 40),
                         cursor=cursor).start()
    second = consume(stream)  # the same producer thread, never restarted
    stream.close()
    producer.stop()
    assert producer.producer.session >= 1  # it noticed and joined the new trainer
    assert sorted(first + second) == [(0, b) for b in range(40)]


def test_a_stream_told_to_give_up_ends_while_no_batch_comes(tmp_path):
    # No producer: without give_up the iteration would wait for ever.
    cfg = worker_cfg(tmp_path)
    with BatchStream(cfg, digest=SyntheticBuilder.digest, plan=plan()) as stream:
        asked = []
        stream.give_up = lambda: asked.append(1) or len(asked) >= 3
        assert consume(stream) == []
        assert stream.gave_up and len(asked) == 3
