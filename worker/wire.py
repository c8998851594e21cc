"""The wire format between producers and the trainer (numpy + msgpack, never pickle).

Every message is a ZeroMQ multipart message.  Frame 0 is a small msgpack map:

    {"magic": "SGWK", "version": 1, "type": "batch", "digest": <store+sampler digest>,
     "producer": "host-0", "ticket": [epoch, batch, seed, hard_negatives],
     "arrays": [[name, dtype, shape], ...], "hash": "xxh3", "checksum": <of frames 1..n>}

Frames 1..n are the raw, C-contiguous buffers of the batch's arrays, sent
zero-copy.  Control messages ("hello", "welcome", "refuse", "tickets",
"heartbeat", "bye", "rejoin") are the header alone, with a "body" map.

Decoding trusts nothing: the header is checked against a schema, dtypes
against a whitelist, every buffer size against its descriptor, the frame count
and hard limits.  Anything else raises `WireError` whose `reason` is one of
`REJECT_REASONS`, so the receiver counts it and keeps going.
"""

from __future__ import annotations

import re
import zlib
from dataclasses import dataclass, field
from typing import Any

import msgpack
import numpy as np

from worker.batch import MiniBatch
from worker.ticket import Ticket

MAGIC = "SGWK"
WIRE_VERSION = 1
MESSAGE_TYPES = ("hello", "welcome", "refuse", "tickets", "heartbeat", "bye", "rejoin", "batch")
REJECT_REASONS = ("bad_header", "corrupt", "oversize", "wrong_version", "wrong_digest",
                  "wrong_frame_count", "bad_dtype", "unknown_peer", "unknown_ticket")

# Little-endian (or byte-order-free) plain numeric types only: object, string
# and structured dtypes could smuggle arbitrary data or Python objects.
DTYPES = frozenset(np.dtype(t).str for t in (
    "bool", "int8", "int16", "int32", "int64", "uint8", "uint16", "uint32", "uint64",
    "<f2", "<f4", "<f8", "<i2", "<i4", "<i8", "<u2", "<u4", "<u8"))
MAX_HEADER_BYTES = 64 * 1024
MAX_ARRAYS = 256
MAX_NDIM = 4
_NAME = re.compile(r"^[a-z_][a-z0-9_]{0,63}$")
_HEADER_KEYS = {"magic", "version", "type", "digest", "producer", "ticket", "arrays",
                "hash", "checksum", "body"}


def _xxh3(buffers) -> int:
    import xxhash
    h = xxhash.xxh3_64()
    for buf in buffers:
        h.update(buf)
    return h.intdigest()


def _crc32(buffers) -> int:
    crc = 0
    for buf in buffers:
        crc = zlib.crc32(buf, crc)
    return crc


# xxh3 runs at ~18 GB/s here, crc32 at 2-5 GB/s: on 4 MiB batches crc32 on
# both ends cost more than the ipc transfer itself.  crc32 stays as the
# fallback where the xxhash wheel is missing; "none" skips the check.
HASHES = {"xxh3": _xxh3, "crc32": _crc32}


def default_hash() -> str:
    try:
        import xxhash  # noqa: F401
    except ImportError:
        return "crc32"
    return "xxh3"


class WireError(Exception):
    """A message that is not acceptable; `reason` is counted by the receiver."""

    def __init__(self, reason: str, message: str):
        assert reason in REJECT_REASONS, reason
        super().__init__(f"{reason}: {message}")
        self.reason = reason


@dataclass(frozen=True)
class Header:
    type: str
    digest: str
    producer: str
    version: int = WIRE_VERSION
    ticket: Ticket | None = None
    arrays: tuple[tuple[str, str, tuple[int, ...]], ...] = ()
    checksum: int = 0
    hash: str = "none"
    body: dict[str, Any] = field(default_factory=dict)


@dataclass(frozen=True)
class Message:
    """A decoded message: its header and, for a batch, the MiniBatch."""

    header: Header
    batch: MiniBatch | None = None
    nbytes: int = 0


# -- encoding ----------------------------------------------------------------

def control(type_: str, *, digest: str, producer: str, **body: Any) -> list[bytes]:
    """A control message (header only) ready for send_multipart."""
    assert type_ in MESSAGE_TYPES and type_ != "batch", type_
    return [msgpack.packb({"magic": MAGIC, "version": WIRE_VERSION, "type": type_,
                           "digest": digest, "producer": producer, "body": body})]


def encode_batch(batch: MiniBatch, *, digest: str, producer: str,
                 hash: str | None = None) -> list:
    """Frames for `batch`: header plus one buffer per array, not copied.

    The returned list holds the arrays; the caller must not modify them until
    ZeroMQ reports the send complete (the producer keeps each send's
    MessageTracker and frames until `tracker.done`: `Producer._in_flight`)."""
    arrays = [(name, np.ascontiguousarray(a)) for name, a in batch.to_arrays().items()]
    for name, a in arrays:
        if a.dtype.str not in DTYPES:
            raise TypeError(f"array {name!r} has dtype {a.dtype.str}, which the wire does "
                            f"not carry; use one of {sorted(DTYPES)}")
    buffers = [memoryview(a).cast("B") if a.nbytes else b"" for _, a in arrays]
    hash = default_hash() if hash is None else hash
    checksum = HASHES[hash](buffers) if hash != "none" else 0
    header = {"magic": MAGIC, "version": WIRE_VERSION, "type": "batch", "digest": digest,
              "producer": producer, "ticket": batch.ticket.as_list(),
              "arrays": [[n, a.dtype.str, list(a.shape)] for n, a in arrays],
              "hash": hash, "checksum": checksum}
    return [msgpack.packb(header), *buffers]


# -- decoding ----------------------------------------------------------------

def decode(frames: list, *, digest: str | None, max_bytes: int) -> Message:
    """Validate and decode one multipart message (bytes or zmq.Frame parts).

    `digest=None` skips the digest check (used for the handshake itself, which
    answers a mismatch with a "refuse" naming both values)."""
    if not frames:
        raise WireError("wrong_frame_count", "empty message")
    header = parse_header(_buffer(frames[0]))
    if digest is not None and header.digest != digest:
        raise WireError("wrong_digest", f"message digest {header.digest!r} != expected "
                        f"{digest!r} (producer {header.producer!r})")
    if header.type != "batch":
        if len(frames) != 1:
            raise WireError("wrong_frame_count",
                            f"{header.type} message has {len(frames)} frames, expected 1")
        return Message(header)
    return _decode_batch(header, [_buffer(f) for f in frames[1:]], max_bytes)


def parse_header(raw: memoryview | bytes) -> Header:
    if len(raw) > MAX_HEADER_BYTES:
        raise WireError("oversize", f"header of {len(raw)} bytes > {MAX_HEADER_BYTES}")
    try:
        h = msgpack.unpackb(raw, raw=False, strict_map_key=True, max_array_len=4 * MAX_ARRAYS,
                            max_map_len=64, max_str_len=4096, max_bin_len=0, max_ext_len=0)
    except Exception as err:  # msgpack raises many types for garbage input
        raise WireError("bad_header", f"frame 0 is not msgpack: {type(err).__name__}") from None
    if not isinstance(h, dict) or h.get("magic") != MAGIC:
        raise WireError("bad_header", "frame 0 lacks the sagewalk magic")
    if h.get("version") != WIRE_VERSION:
        raise WireError("wrong_version", f"wire version {h.get('version')!r} != "
                        f"{WIRE_VERSION} (this build); run the same sagewalk version on both ends")
    unknown = set(h) - _HEADER_KEYS
    if unknown:
        raise WireError("bad_header", f"unknown header keys {sorted(map(str, unknown))}")
    type_, digest, producer = h.get("type"), h.get("digest"), h.get("producer")
    if type_ not in MESSAGE_TYPES:
        raise WireError("bad_header", f"unknown message type {type_!r}")
    if not isinstance(digest, str) or not isinstance(producer, str):
        raise WireError("bad_header", "digest and producer must be strings")
    body = h.get("body", {})
    if not isinstance(body, dict):
        raise WireError("bad_header", "body must be a map")
    if type_ != "batch":
        return Header(type_, digest, producer, body=body)
    hash_ = h.get("hash")
    if not isinstance(hash_, str) or (hash_ not in HASHES and hash_ != "none"):
        raise WireError("bad_header", f"unknown checksum algorithm {hash_!r}; expected one "
                        f"of {sorted(HASHES)} or 'none'")
    if hash_ == "xxh3" and default_hash() != "xxh3":
        raise WireError("bad_header", "xxh3 checksum but the xxhash package is not installed "
                        "here; `pip install xxhash` on the trainer")
    return Header(type_, digest, producer, ticket=_ticket(h.get("ticket")),
                  arrays=_descriptors(h.get("arrays")), checksum=_int(h.get("checksum")),
                  hash=hash_, body=body)


def _decode_batch(header: Header, buffers: list[memoryview], max_bytes: int) -> Message:
    if len(buffers) != len(header.arrays):
        raise WireError("wrong_frame_count", f"{len(buffers)} data frames for "
                        f"{len(header.arrays)} arrays in the header")
    total = sum(len(b) for b in buffers)
    if total > max_bytes:
        raise WireError("oversize", f"{total} bytes > limit {max_bytes}")
    arrays = {}
    for (name, dtype, shape), buf in zip(header.arrays, buffers):
        expected = int(np.prod(shape, dtype=np.int64)) * np.dtype(dtype).itemsize
        if len(buf) != expected:
            raise WireError("corrupt", f"array {name!r}: {len(buf)} bytes, descriptor "
                            f"{dtype}{list(shape)} needs {expected}")
        arrays[name] = np.frombuffer(buf, dtype=dtype).reshape(shape)
    if header.hash != "none":
        actual = HASHES[header.hash](buffers)
        if actual != header.checksum:
            raise WireError("corrupt", f"{header.hash} checksum {actual:#x} != header "
                            f"{header.checksum:#x}")
    try:
        batch = MiniBatch.from_arrays(arrays)
    except (KeyError, ValueError, TypeError, IndexError) as err:
        raise WireError("bad_header", f"arrays do not form a MiniBatch: {err!r}") from None
    if batch.ticket != header.ticket:
        raise WireError("bad_header", f"ticket array {batch.ticket} != header {header.ticket}")
    return Message(header, batch, total)


def _descriptors(raw: Any) -> tuple[tuple[str, str, tuple[int, ...]], ...]:
    if not isinstance(raw, list) or len(raw) > MAX_ARRAYS:
        raise WireError("bad_header", f"arrays must be a list of at most {MAX_ARRAYS}")
    out, seen = [], set()
    for item in raw:
        if not (isinstance(item, list) and len(item) == 3):
            raise WireError("bad_header", f"array descriptor {item!r} is not [name, dtype, shape]")
        name, dtype, shape = item
        if not isinstance(name, str) or not _NAME.match(name) or name in seen:
            raise WireError("bad_header", f"bad or repeated array name {name!r}")
        if dtype not in DTYPES:
            raise WireError("bad_dtype", f"array {name!r}: dtype {dtype!r} not allowed")
        if (not isinstance(shape, list) or len(shape) > MAX_NDIM
                or not all(isinstance(d, int) and 0 <= d < 1 << 40 for d in shape)):
            raise WireError("bad_header", f"array {name!r}: bad shape {shape!r}")
        seen.add(name)
        out.append((name, dtype, tuple(shape)))
    return tuple(out)


def _ticket(raw: Any) -> Ticket:
    if not (isinstance(raw, list) and len(raw) == 4):
        raise WireError("bad_header", f"ticket {raw!r} is not [epoch, batch, seed, hard]")
    return Ticket.from_list([_int(v) for v in raw])


def _int(v: Any) -> int:
    if isinstance(v, bool) or not isinstance(v, int):
        raise WireError("bad_header", f"expected an integer, got {v!r}")
    return v


def _buffer(frame: Any) -> memoryview:
    buf = getattr(frame, "buffer", None)
    return memoryview(frame if buf is None else buf).cast("B")
