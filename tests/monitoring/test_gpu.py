"""NVML collector: series per GPU, and a clear log line when NVML is absent.

No GPU on the CI machine: the translation from NVML's readings to metrics is
checked against a small in-test device table shaped like `pynvml`; the
absent-NVML path runs for real (package missing, or installed without a driver).
"""

from __future__ import annotations

import logging
from types import SimpleNamespace

from prometheus_client import CollectorRegistry

from monitoring.gpu import NvmlCollector, nvml_collector


class _DeviceTable:
    """Two GPUs with fixed readings; the second fails to answer once asked to."""

    class NVMLError(Exception):
        pass

    def __init__(self, broken: set[int] = frozenset()):
        self.broken = broken
        self.readings = {0: (37, 1_000_000_000), 1: (100, 2_500_000_000)}

    def nvmlDeviceGetCount(self):  # noqa: N802 - pynvml's names
        return len(self.readings)

    def nvmlDeviceGetHandleByIndex(self, index):  # noqa: N802
        if index in self.broken:
            raise self.NVMLError("GPU is lost")
        return index

    def nvmlDeviceGetUtilizationRates(self, handle):  # noqa: N802
        return SimpleNamespace(gpu=self.readings[handle][0], memory=0)

    def nvmlDeviceGetMemoryInfo(self, handle):  # noqa: N802
        return SimpleNamespace(used=self.readings[handle][1], total=0, free=0)


def _registry(nvml) -> CollectorRegistry:
    registry = CollectorRegistry()
    registry.register(NvmlCollector(nvml))
    return registry


def test_reports_ratio_and_bytes_per_gpu():
    table = _DeviceTable()
    registry = _registry(table)
    get = registry.get_sample_value
    assert get("sagewalk_gpu_utilization_ratio", {"gpu": "0"}) == 0.37
    assert get("sagewalk_gpu_utilization_ratio", {"gpu": "1"}) == 1.0
    assert get("sagewalk_gpu_memory_used_bytes", {"gpu": "1"}) == 2.5e9
    table.readings[0] = (5, 7)  # read at scrape time, not cached
    assert get("sagewalk_gpu_utilization_ratio", {"gpu": "0"}) == 0.05


def test_a_lost_gpu_is_skipped_and_logged_once(caplog):
    registry = _registry(_DeviceTable(broken={1}))
    with caplog.at_level(logging.WARNING, logger="monitoring.gpu"):
        for _ in range(3):
            assert registry.get_sample_value("sagewalk_gpu_memory_used_bytes", {"gpu": "0"}) == 1e9
            assert registry.get_sample_value("sagewalk_gpu_memory_used_bytes", {"gpu": "1"}) is None
    assert [r.getMessage() for r in caplog.records] == [
        "NVML: cannot read GPU 1 (GPU is lost); its series are skipped"]


def test_absent_nvml_says_why_in_one_line(caplog):
    with caplog.at_level(logging.INFO, logger="monitoring.gpu"):
        collector = nvml_collector()
    has_gpu = False
    try:
        import pynvml
    except ImportError:
        pynvml = None
    if pynvml is not None:
        try:
            pynvml.nvmlInit()
            has_gpu = True
        except pynvml.NVMLError:
            has_gpu = False  # installed, but no driver or GPU here
    messages = [r.getMessage() for r in caplog.records]
    assert len(messages) == 1
    if has_gpu:
        assert collector is not None and messages[0].startswith("GPU metrics on")
    else:
        assert collector is None and messages[0].startswith("GPU metrics off")
        assert "nvidia-ml-py" in messages[0] or "NVML unavailable" in messages[0]
