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
    """The resident set now (VmRSS)."""
    return status_bytes(pid, "VmRSS")["VmRSS"]


def peak_rss_bytes(pid: int | str = "self") -> int:
    """The peak resident set so far (VmHWM): it only rises, so a poll's last
    value is the peak up to then."""
    return status_bytes(pid, "VmHWM")["VmHWM"]
