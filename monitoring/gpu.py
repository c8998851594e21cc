"""GPU utilisation and memory per GPU from NVML, read at scrape time.

Reading at scrape time (a collector, not a polling thread) means the numbers
are as fresh as the scrape and an idle exporter costs nothing.  NVML comes from
the optional `nvidia-ml-py` package (import name `pynvml`); without it, or
without a driver, the trainer runs on and says once, in the log, why GPU panels
stay empty.
"""

from __future__ import annotations

import logging
from typing import Any, Iterator

from prometheus_client.core import GaugeMetricFamily
from prometheus_client.registry import Collector

from monitoring import catalogue

log = logging.getLogger(__name__)


class NvmlCollector(Collector):
    """Yields `sagewalk_gpu_utilization_ratio` and `sagewalk_gpu_memory_used_bytes`
    for every GPU NVML sees.  `nvml` is the initialised `pynvml` module."""

    def __init__(self, nvml: Any) -> None:
        self._nvml = nvml
        self._failed: set[int] = set()

    def collect(self) -> Iterator[GaugeMetricFamily]:
        util = _family("sagewalk_gpu_utilization_ratio")
        memory = _family("sagewalk_gpu_memory_used_bytes")
        for index in range(self._nvml.nvmlDeviceGetCount()):
            try:
                handle = self._nvml.nvmlDeviceGetHandleByIndex(index)
                rates = self._nvml.nvmlDeviceGetUtilizationRates(handle)
                info = self._nvml.nvmlDeviceGetMemoryInfo(handle)
            except self._nvml.NVMLError as err:
                # One GPU falling off the bus must not blank the others' panels.
                if index not in self._failed:
                    self._failed.add(index)
                    log.warning("NVML: cannot read GPU %d (%s); its series are skipped", index, err)
                continue
            util.add_metric([str(index)], rates.gpu / 100.0)
            memory.add_metric([str(index)], float(info.used))
        yield util
        yield memory

    def describe(self) -> list:
        # Nothing up front: the registry must not call NVML when registering.
        return []


def _family(name: str) -> GaugeMetricFamily:
    entry = catalogue.BY_NAME[name]
    return GaugeMetricFamily(name, entry.help, labels=list(entry.labels))


def nvml_collector() -> NvmlCollector | None:
    """An `NvmlCollector`, or None (with one log line saying why) when NVML is
    not usable here: the package is missing or no NVIDIA driver is loaded."""
    try:
        import pynvml
    except ImportError:
        log.info("GPU metrics off: nvidia-ml-py is not installed "
                 "(pip install nvidia-ml-py to report GPU utilisation and memory)")
        return None
    try:
        pynvml.nvmlInit()
        count = pynvml.nvmlDeviceGetCount()
    except pynvml.NVMLError as err:
        log.info("GPU metrics off: NVML unavailable (%s); no NVIDIA driver or GPU here", err)
        return None
    log.info("GPU metrics on: NVML sees %d GPU(s)", count)
    return NvmlCollector(pynvml)
