"""A rogue peer on the trainer's socket: everything it sends is rejected and
counted, while a real producer's traffic keeps flowing; CURVE keeps
unauthenticated peers out."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import msgpack
import pytest
import zmq
from hypothesis import HealthCheck, given, settings, strategies as st

sys.path.insert(0, str(Path(__file__).parents[1] / "worker"))
from synthetic import SyntheticBuilder, synthetic_batch  # noqa: E402
from test_stream import ThreadProducer, consume, worker_cfg  # noqa: E402

from gpu_consumer.stream import BatchStream, EpochPlan  # noqa: E402
from worker import wire  # noqa: E402
from worker.transport import generate_keys  # noqa: E402

DIGEST = SyntheticBuilder.digest


def rogue_messages(plan):
    good = wire.encode_batch(synthetic_batch(plan.ticket(0, 0)), digest=DIGEST, producer="r")
    header = msgpack.unpackb(good[0])
    flipped = [bytes(f) for f in good]
    flipped[2] = bytes([flipped[2][0] ^ 1]) + flipped[2][1:]
    old = dict(header, version=0)
    # each frame fits ZMQ_MAXMSGSIZE (per frame), the whole message does not
    many = dict(header, arrays=header["arrays"] + [["pad", "|u1", [35_000]],
                                                   ["pad2", "|u1", [35_000]]])
    return {
        "corrupt": flipped,
        "truncated": good[:-1] + [bytes(good[-1])[:-2]],
        "wrong_version": [msgpack.packb(old)] + good[1:],
        "wrong_frame_count": good[:-1],
        "oversize": [msgpack.packb(many)] + good[1:] + [b"\0" * 35_000] * 2,
        "random": [b"\x93\x01\x02garbage"],
        "wrong_digest": wire.encode_batch(synthetic_batch(plan.ticket(0, 1)), digest="x",
                                          producer="r"),
    }


def test_rogue_peer_is_rejected_while_valid_traffic_flows(tmp_path):
    cfg = worker_cfg(tmp_path, max_message_bytes=60_000)
    plan = EpochPlan(1, num_batches=lambda e: 60, base_seed=3)
    with BatchStream(cfg, digest=DIGEST, plan=plan) as stream:
        producer = ThreadProducer(cfg, "p0")
        ctx = zmq.Context()
        rogue = ctx.socket(zmq.DEALER)
        rogue.setsockopt(zmq.LINGER, 0)
        rogue.setsockopt(zmq.IDENTITY, b"rogue")
        rogue.connect(cfg.trainer_endpoint)
        rogue.send_multipart(wire.control("hello", digest=DIGEST, producer="rogue"))
        time.sleep(0.2)
        for frames in rogue_messages(plan).values():
            rogue.send_multipart(frames)
        keys = consume(stream)
        producer.stop()
        rejected = stream.summary()["rejected"]
        rogue.close()
        ctx.term()
    assert sorted(keys) == [(0, b) for b in range(60)]
    assert rejected["corrupt"] == 2  # flipped byte and truncated buffer
    for reason in ("wrong_version", "wrong_frame_count", "oversize", "bad_header",
                   "wrong_digest"):
        assert rejected[reason] == 1, (reason, rejected)
    assert stream.summary()["duplicates"] == 0


@pytest.fixture(scope="module")
def fuzz_stream(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("fuzz")
    cfg = worker_cfg(tmp)
    stream = BatchStream(cfg, digest=DIGEST, plan=EpochPlan(1, lambda e: 0)).start()
    ctx = zmq.Context()
    sock = ctx.socket(zmq.DEALER)
    sock.setsockopt(zmq.LINGER, 0)
    sock.connect(cfg.trainer_endpoint)
    yield stream, sock
    sock.close()
    ctx.term()
    stream.close()


@given(header=st.dictionaries(st.sampled_from(sorted(wire._HEADER_KEYS) + ["x"]),
                              st.integers(-2**63, 2**64 - 1) | st.text(max_size=5)
                              | st.lists(st.integers(-2**63, 2**63), max_size=4)),
       extra=st.lists(st.binary(max_size=16), max_size=3))
@settings(max_examples=40, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
def test_fuzzed_headers_never_break_the_receiver(fuzz_stream, header, extra):
    stream, sock = fuzz_stream
    before = sum(stream.summary()["rejected"].values())
    sock.send_multipart([msgpack.packb(dict(header, magic="SGWK", version=1))] + extra)
    sock.send_multipart([b"probe"])  # always rejected: proves the receiver is still alive
    deadline = time.monotonic() + 5
    while sum(stream.summary()["rejected"].values()) < before + 1 and time.monotonic() < deadline:
        time.sleep(0.002)
    assert sum(stream.summary()["rejected"].values()) >= before + 1
    assert stream._error is None


def test_curve_lets_only_authorised_producers_in(tmp_path):
    keys = tmp_path / "keys"
    generate_keys(keys)
    port = _free_port()
    cfg = worker_cfg(tmp_path, trainer_endpoint=f"tcp://127.0.0.1:{port}",
                     curve_keys_dir=str(keys))
    plan = EpochPlan(1, num_batches=lambda e: 5)
    with BatchStream(cfg, digest=DIGEST, plan=plan) as stream:
        # an intruder with its own keypair, and one speaking plain ZMTP
        other = tmp_path / "other"
        generate_keys(other)
        intruder_cfg = worker_cfg(tmp_path, trainer_endpoint=cfg.trainer_endpoint,
                                  curve_keys_dir=str(other))
        (other / "trainer.key").write_bytes((keys / "trainer.key").read_bytes())
        intruder = ThreadProducer(intruder_cfg, "intruder")
        plain = ThreadProducer(worker_cfg(tmp_path, trainer_endpoint=cfg.trainer_endpoint),
                               "plain")
        time.sleep(1.5)
        assert stream.summary()["tickets_issued"] == 0
        assert intruder.producer.joined is False and plain.producer.joined is False
        good = ThreadProducer(cfg, "good")
        assert sorted(consume(stream)) == [(0, b) for b in range(5)]
        for p in (intruder, plain, good):
            p.stop()
        assert intruder.producer.sent == 0 and plain.producer.sent == 0


def test_tcp_bind_beyond_loopback_needs_keys(tmp_path):
    from worker.transport import TransportError
    cfg = worker_cfg(tmp_path, trainer_endpoint="tcp://0.0.0.0:0")
    with pytest.raises(TransportError, match="curve_keys_dir"):
        BatchStream(cfg, digest=DIGEST, plan=EpochPlan(1, lambda e: 1)).start()


def _free_port():
    import socket
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_wire_version_mismatch_is_refused_naming_both_versions(tmp_path, caplog):
    cfg = worker_cfg(tmp_path)
    with BatchStream(cfg, digest=DIGEST, plan=EpochPlan(1, lambda e: 1)) as stream:
        ctx = zmq.Context()
        old = ctx.socket(zmq.DEALER)
        old.setsockopt(zmq.LINGER, 0)
        old.connect(cfg.trainer_endpoint)
        hello = msgpack.unpackb(wire.control("hello", digest=DIGEST, producer="old")[0])
        old.send(msgpack.packb(dict(hello, version=wire.WIRE_VERSION + 1)))
        assert old.poll(5000), "no answer to a hello of another wire version"
        reply = old.recv_multipart()
        old.close()
        ctx.term()
        assert stream.summary()["rejected"] == {"wrong_version": 1}
    refuse = msgpack.unpackb(reply[0])
    assert refuse["type"] == "refuse"
    # what the producer logs: both versions, whichever side is older
    assert f"wire version {wire.WIRE_VERSION + 1} != {wire.WIRE_VERSION}" in refuse["body"]["reason"]
    assert f"{wire.WIRE_VERSION + 1} != {wire.WIRE_VERSION}" in caplog.text
