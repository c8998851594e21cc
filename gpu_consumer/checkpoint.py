"""Crash-safe checkpoints: write whole or not at all, fall back when damaged.

A checkpoint file is `MAGIC + sha256(payload) + payload`, where the payload
is `torch.save` of tensors and plain data (dicts, lists, numbers, strings),
loaded back with `weights_only=True`: no pickled objects, so a checkpoint
cannot run code.  Writes go to a temp file in the same directory, are
fsynced, renamed into place and the directory fsynced, so a crash or a full
disk mid-write leaves the previous checkpoint as the newest intact one.

    save(run_dir, state) -> Path          # keeps the newest `keep`
    load_latest(run_dir) -> dict | None   # newest intact one (read in a stream: memory holds
                                          # the state once), with a warning per damaged one;
                                          # NoIntactCheckpoint when every one is damaged
    set_aside(run_dir) -> Path | None     # start over: move every checkpoint aside, delete none
"""

from __future__ import annotations

import hashlib
import io
import logging
import os
import re
import time
from pathlib import Path
from typing import BinaryIO, Callable

import torch

from common.errors import SagewalkError

log = logging.getLogger(__name__)

MAGIC = b"SAGEWALK-CKPT-1\n"
_NAME = re.compile(r"^checkpoint-(\d{9})\.pt$")
_TEMP = re.compile(r"^\.checkpoint-\d{9}\.pt\.tmp-(\d+)$")  # write_atomically's, by pid
_CHUNK = 1 << 20


class CorruptCheckpoint(SagewalkError):
    """A checkpoint file that is truncated, altered or not a checkpoint."""


class NoIntactCheckpoint(SagewalkError):
    """Checkpoints exist but none reads back: starting from step 0 would
    silently throw the run away, so the trainer refuses instead."""


def checkpoint_dir(run_dir: str | os.PathLike) -> Path:
    return Path(run_dir) / "checkpoints"


def _write_chunk(fd: int, data: memoryview) -> int:
    """One write(2); a separate function so tests can inject ENOSPC."""
    return os.write(fd, data)


def write_atomically(path: Path, data: bytes | Callable[[BinaryIO], object]) -> None:
    """Temp file, write, fsync, rename, fsync the directory.  On any error the
    temp file is removed and the error propagates; `path` is untouched.

    `data` is the bytes, or a function that writes them into the (seekable,
    binary) temp file: `torch.save` streams a large state through it instead
    of building it in memory first."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.tmp-{os.getpid()}")
    try:  # a file replaced keeps its mode (a 0600 checkpoint stays private)
        mode = os.stat(path).st_mode & 0o7777
    except FileNotFoundError:
        mode = None
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o644)
    if mode is not None:
        os.fchmod(fd, mode)  # not via O_CREAT: its mode is masked by the umask
    try:
        sink = _FdFile(fd)
        data(sink) if callable(data) else sink.write(data)
        os.fsync(fd)
    except BaseException:
        os.close(fd)
        tmp.unlink(missing_ok=True)
        raise
    os.close(fd)
    os.replace(tmp, path)
    dir_fd = os.open(path.parent, os.O_RDONLY)
    try:
        os.fsync(dir_fd)
    finally:
        os.close(dir_fd)


class _FdFile(io.RawIOBase):
    """A seekable binary file over `fd` whose writes go through _write_chunk."""

    def __init__(self, fd: int):
        self.fd = fd

    def writable(self) -> bool:
        return True

    def seekable(self) -> bool:
        return True

    def write(self, data) -> int:
        view = memoryview(data).cast("B")
        size = len(view)
        while view:
            view = view[_write_chunk(self.fd, view[:_CHUNK]):]
        return size

    def seek(self, offset: int, whence: int = os.SEEK_SET) -> int:
        return os.lseek(self.fd, offset, whence)

    def tell(self) -> int:
        return os.lseek(self.fd, 0, os.SEEK_CUR)


class _Hashing:
    """Writes through to `file`, hashing what passes."""

    def __init__(self, file: BinaryIO):
        self.file, self.sha = file, hashlib.sha256()

    def write(self, data) -> int:
        self.sha.update(data)
        return self.file.write(data)

    def flush(self) -> None:
        self.file.flush()


def write_state(file: BinaryIO, state: dict) -> None:
    """A checkpoint into the seekable `file`: the header with a placeholder
    digest, the payload streamed by torch.save, then the digest in place, so
    the state is never held twice in memory."""
    start = file.tell()
    file.write(MAGIC + b"0" * 64 + b"\n")
    hashing = _Hashing(file)
    torch.save(state, hashing)
    end = file.tell()
    file.seek(start + len(MAGIC))
    file.write(hashing.sha.hexdigest().encode())
    file.seek(end)


def encode(state: dict) -> bytes:
    buffer = io.BytesIO()
    write_state(buffer, state)
    return buffer.getvalue()


def decode(data: bytes, where: str = "<bytes>") -> dict:
    return _verified_load(io.BytesIO(data), where)


def read(path: str | os.PathLike) -> dict:
    """One checkpoint file, verified and loaded without holding its bytes: the
    digest is checked over the file in 1 MiB reads, then torch.load reads the
    payload from the same open file, so resuming a run whose id table and
    Adam moments are gigabytes needs the state once, not the file and the
    state."""
    with open(path, "rb") as file:
        return _verified_load(file, str(path))


def _verified_load(file: BinaryIO, where: str) -> dict:
    head = file.read(len(MAGIC) + 65)
    if not head.startswith(MAGIC):
        raise CorruptCheckpoint(f"{where}: not a sagewalk checkpoint (bad magic)")
    digest, start = head[len(MAGIC):len(MAGIC) + 64], file.tell()
    sha, size = hashlib.sha256(), len(head)
    for block in iter(lambda: file.read(_CHUNK), b""):
        sha.update(block)
        size += len(block)
    if sha.hexdigest().encode() != digest:
        raise CorruptCheckpoint(f"{where}: checksum mismatch (truncated or altered, "
                                f"{size} bytes)")
    file.seek(start)
    try:
        return torch.load(file, map_location="cpu", weights_only=True)
    except Exception as err:  # torch raises several types for bad payloads
        raise CorruptCheckpoint(f"{where}: payload does not load: {err}") from err


def list_checkpoints(run_dir: str | os.PathLike) -> list[Path]:
    """Checkpoint files, oldest first (by the step in their name)."""
    folder = checkpoint_dir(run_dir)
    if not folder.is_dir():
        return []
    found = [(int(m.group(1)), p) for p in folder.iterdir() if (m := _NAME.match(p.name))]
    return [p for _, p in sorted(found)]


def save(run_dir: str | os.PathLike, state: dict, *, step: int | None = None,
         keep: int = 3) -> Path:
    """Write `state` as checkpoint-<step>.pt and delete all but the newest `keep`."""
    step = int(state.get("step", 0) if step is None else step)
    path = checkpoint_dir(run_dir) / f"checkpoint-{step:09d}.pt"
    _remove_orphaned_temps(path.parent)
    write_atomically(path, lambda file: write_state(file, state))
    for old in list_checkpoints(run_dir)[:-keep]:
        old.unlink(missing_ok=True)
    return path


def _remove_orphaned_temps(folder: Path) -> None:
    """Delete temp files of writers killed mid-write (kill -9 skips the
    cleanup in write_atomically): never listed or loaded, they only fill the
    disk, a checkpoint's size per crash.  A live writer's temp file is kept."""
    if not folder.is_dir():
        return
    for path in folder.iterdir():
        match = _TEMP.match(path.name)
        if match and not _alive(int(match.group(1))):
            path.unlink(missing_ok=True)


def _alive(pid: int) -> bool:
    if pid == os.getpid():
        return True
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True  # someone else's process: not ours to judge
    return True


def load_latest(run_dir: str | os.PathLike) -> dict | None:
    """The newest checkpoint that reads back intact, or None when there is none.
    Each damaged newer one is skipped with a warning naming it and the one
    used instead; when every one is damaged, NoIntactCheckpoint."""
    found = list_checkpoints(run_dir)
    damaged: list[str] = []
    for path in reversed(found):
        try:
            state = read(path)
        except (CorruptCheckpoint, OSError) as err:
            log.warning("damaged checkpoint: %s", err)
            damaged.append(str(err))
            continue
        if damaged:
            log.warning("falling back to the older intact checkpoint %s (%d newer damaged)",
                        path, len(damaged))
        state["_path"] = str(path)
        return state
    if damaged:
        raise NoIntactCheckpoint(
            f"{checkpoint_dir(run_dir)}: no intact checkpoint to resume from ("
            + "; ".join(damaged) + "); to start over from step 0 run the trainer with "
            "--fresh (it moves them aside, deleting nothing), or move the files away yourself")
    return None


def set_aside(run_dir: str | os.PathLike) -> Path | None:
    """Start over: move every checkpoint (intact or not) into
    checkpoints/set-aside-<UTC time>/, so nothing is lost; None when none."""
    found = list_checkpoints(run_dir)
    if not found:
        return None
    dest = checkpoint_dir(run_dir) / time.strftime("set-aside-%Y%m%dT%H%M%SZ", time.gmtime())
    while dest.exists():
        dest = dest.with_name(dest.name + "-1")
    dest.mkdir()
    for path in found:
        os.replace(path, dest / path.name)
    log.warning("--fresh: moved %d checkpoint(s) aside to %s; training starts from step 0",
                len(found), dest)
    return dest
