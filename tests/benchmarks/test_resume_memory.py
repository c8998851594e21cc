"""benchmarks/resume_memory.py: reading a checkpoint back holds the state once."""

from benchmarks.resume_memory import measure


def test_a_streamed_read_needs_the_state_once_and_a_whole_read_more(tmp_path):
    got = measure(64, tmp_path)
    # The state is 64 MiB.  Streamed: the tensor, plus torch's and Python's own
    # small buffers; whole: the file's bytes, the payload slice and the tensor.
    assert got["stream"]["per_state"] < 1.5
    assert got["whole"]["per_state"] > 1.8
