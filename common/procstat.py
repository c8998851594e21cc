"""A process's memory figures from /proc/PID/status (Linux)."""

from __future__ import annotations


def status_bytes(pid: int | str = "self", *fields: str) -> dict[str, int]:
    """{field: bytes} for the kB lines of /proc/PID/status named (VmRSS,
    VmHWM, RssAnon, ...); a field the file lacks is absent.  OSError when the
    process is gone."""
    wanted = set(fields)
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key, _, rest = line.partition(":")
            if key in wanted:
                out[key] = int(rest.split()[0]) * 1024
    return out


def rss_bytes(pid: int | str = "self") -> int:
    """The resident set now (VmRSS); 0 for a process that has exited and
    not been reaped (a zombie's status has no memory lines)."""
    return status_bytes(pid, "VmRSS").get("VmRSS", 0)


def peak_rss_bytes(pid: int | str = "self") -> int:
    """The peak resident set so far (VmHWM): it only rises, so a poll's last
    value is the peak up to then; 0 for an exited, unreaped process (whose
    peak a poll before its exit has already read)."""
    return status_bytes(pid, "VmHWM").get("VmHWM", 0)
