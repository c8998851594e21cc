"""benchmarks/hard_negatives.py: what the log-proposal correction costs the producers."""

import pytest

from benchmarks.hard_negatives import BATCH, EASY, HARD, measure


def test_the_correction_adds_one_float16_per_negative_to_each_message():
    got = measure(batches=2, items=600)
    added = got["message_bytes_corrected"] - got["message_bytes_uncorrected"]
    assert added == BATCH * (EASY + HARD) * 2
    assert got["build_ms_corrected"] > 0 and got["build_ms_uncorrected"] > 0
    assert got["build_time_ratio"] == pytest.approx(
        got["build_ms_corrected"] / got["build_ms_uncorrected"], abs=0.01)
