"""worker.wire: round trips, zero-copy decode, and every rejection reason."""

from __future__ import annotations

import msgpack
import numpy as np
import pytest
from hypothesis import given, settings, strategies as st

from synthetic import assert_batches_equal, synthetic_batch
from worker import wire
from worker.ticket import Ticket

DIGEST = "d" * 16
LIMIT = 1 << 24


def frames_for(ticket=Ticket(1, 2, 99, 3), **kw):
    return wire.encode_batch(synthetic_batch(ticket, **kw), digest=DIGEST, producer="p-0")


def reject(frames, reason, digest=DIGEST, limit=LIMIT):
    with pytest.raises(wire.WireError) as info:
        wire.decode(frames, digest=digest, max_bytes=limit)
    assert info.value.reason == reason, str(info.value)
    return info.value


@given(epoch=st.integers(0, 1000), batch=st.integers(0, 10**6), seed=st.integers(0, 2**63 - 1),
       hard=st.integers(0, 5), targets=st.integers(2, 40))
@settings(max_examples=40, deadline=None)
def test_round_trip_is_exact(epoch, batch, seed, hard, targets):
    ticket = Ticket(epoch, batch, seed, hard)
    original = synthetic_batch(ticket, targets=targets)
    frames = wire.encode_batch(original, digest=DIGEST, producer="p-0")
    message = wire.decode([bytes(f) for f in frames], digest=DIGEST, max_bytes=LIMIT)
    assert message.header.producer == "p-0" and message.header.ticket == ticket
    assert_batches_equal(message.batch, original)
    assert (message.batch.negative_logq is None) == (hard == 0)


def test_float16_features_travel_at_half_size():
    frames32 = frames_for()
    batch16 = synthetic_batch(Ticket(1, 2, 99, 3), dtype=np.float16)
    frames16 = wire.encode_batch(batch16, digest=DIGEST, producer="p")
    decoded = wire.decode(frames16, digest=DIGEST, max_bytes=LIMIT).batch
    assert decoded.features.dtype == np.float16
    assert sum(len(f) for f in frames16[1:]) < sum(len(f) for f in frames32[1:])


def test_decode_does_not_copy_large_buffers():
    frames = list(frames_for(targets=4096, dim=64))
    index = [d[0] for d in msgpack.unpackb(frames[0])["arrays"]].index("features") + 1
    buffer = frames[index] = bytearray(frames[index])
    features = wire.decode(frames, digest=DIGEST, max_bytes=LIMIT).batch.features
    assert np.shares_memory(features, np.frombuffer(buffer, dtype=np.uint8))


def test_control_messages_round_trip():
    frames = wire.control("tickets", digest=DIGEST, producer="", tickets=[[0, 1, 2, 3]])
    message = wire.decode(frames, digest=DIGEST, max_bytes=LIMIT)
    assert message.header.type == "tickets" and message.header.body["tickets"] == [[0, 1, 2, 3]]
    assert message.batch is None


def test_flipped_byte_is_corrupt():
    frames = [bytearray(f) for f in frames_for()]
    frames[2][0] ^= 0xFF
    reject(frames, "corrupt")


def test_truncated_buffer_is_corrupt():
    frames = list(frames_for())
    frames[-1] = bytes(frames[-1])[:-1]
    reject(frames, "corrupt")


def test_missing_frame_is_wrong_frame_count():
    reject(list(frames_for())[:-1], "wrong_frame_count")
    reject(frames_for() + [b"extra"], "wrong_frame_count")
    reject(wire.control("heartbeat", digest=DIGEST, producer="p") + [b"x"], "wrong_frame_count")
    reject([], "wrong_frame_count")


def test_oversize_is_rejected_before_use():
    reject(frames_for(), "oversize", limit=64)
    reject([b"\x00" * (wire.MAX_HEADER_BYTES + 1)], "oversize")


def test_wrong_version_and_digest_name_both_values():
    header = msgpack.unpackb(frames_for()[0])
    header["version"] = 99
    err = reject([msgpack.packb(header)] + frames_for()[1:], "wrong_version")
    assert "99" in str(err) and str(wire.WIRE_VERSION) in str(err)
    err = reject(frames_for(), "wrong_digest", digest="other")
    assert DIGEST in str(err) and "other" in str(err)


@pytest.mark.parametrize("dtype", ["|O", ">f4", "<U4", "|V8", "<c8"])
def test_dtype_whitelist(dtype):
    frames = frames_for()
    header = msgpack.unpackb(frames[0])
    header["arrays"][1][1] = dtype
    reject([msgpack.packb(header)] + frames[1:], "bad_dtype")


def test_descriptor_mismatch_is_corrupt():
    frames = frames_for()
    header = msgpack.unpackb(frames[0])
    header["arrays"][1][2][0] += 1
    reject([msgpack.packb(header)] + frames[1:], "corrupt")


def test_header_ticket_must_match_the_ticket_array():
    frames = frames_for()
    header = msgpack.unpackb(frames[0])
    header["ticket"][1] += 1
    reject([msgpack.packb(header)] + frames[1:], "bad_header")


@given(st.binary(max_size=200))
@settings(max_examples=200, deadline=None)
def test_random_bytes_are_rejected(data):
    with pytest.raises(wire.WireError):
        wire.decode([data], digest=DIGEST, max_bytes=LIMIT)


_values = st.recursive(st.none() | st.booleans() | st.integers(-2**63, 2**64 - 1)
                       | st.text(max_size=8) | st.floats(allow_nan=False),
                       lambda inner: st.lists(inner, max_size=4)
                       | st.dictionaries(st.text(max_size=8), inner, max_size=4), max_leaves=12)


@given(st.dictionaries(st.sampled_from(sorted(wire._HEADER_KEYS)), _values, max_size=9),
       st.integers(0, 4))
@settings(max_examples=300, deadline=None)
def test_fuzzed_headers_only_ever_raise_wire_errors(fields, extra_frames):
    fields.setdefault("magic", wire.MAGIC)
    fields.setdefault("version", wire.WIRE_VERSION)
    frames = [msgpack.packb(fields)] + [b"\x00" * 8] * extra_frames
    try:
        message = wire.decode(frames, digest=None, max_bytes=LIMIT)
    except wire.WireError as err:
        assert err.reason in wire.REJECT_REASONS
    else:
        assert message.header.type in wire.MESSAGE_TYPES and message.header.type != "batch"


@given(st.data())
@settings(max_examples=100, deadline=None)
def test_mutated_valid_headers_are_rejected_or_exact(data):
    frames = frames_for()
    header = msgpack.unpackb(frames[0])
    key = data.draw(st.sampled_from(sorted(header)))
    header[key] = data.draw(_values)
    try:
        message = wire.decode([msgpack.packb(header)] + frames[1:], digest=DIGEST,
                              max_bytes=LIMIT)
    except wire.WireError as err:
        assert err.reason in wire.REJECT_REASONS
    else:
        assert_batches_equal(message.batch, synthetic_batch(Ticket(1, 2, 99, 3)))
