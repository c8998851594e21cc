"""The config schema: one TOML file, one frozen dataclass per stage.

    config = load("sagewalk.toml")          # or load(None) for the defaults
    config.sampler.num_walks

Each stage owns its section (`sampler/config.py` defines `[sampler]`, with its
help text and checks); this module composes them into the one schema and
reads the file.  The helpers every section uses are in `common.schema`.
"""

from __future__ import annotations

import logging
import tomllib
from dataclasses import dataclass
from pathlib import Path

from common.errors import ConfigError
from common.schema import build, describe, replace, section, to_dict
from gpu_consumer.config import TrainerConfig
from graphstore.config import GraphstoreConfig
from monitoring.config import MonitoringConfig
from sampler.config import SamplerConfig
from serving.config import ServingConfig
from worker.config import WorkerConfig

log = logging.getLogger(__name__)

__all__ = ["Config", "load", "from_dict", "override", "to_dict", "describe", "to_toml"]


@dataclass(frozen=True, kw_only=True)
class Config:
    graphstore: GraphstoreConfig = section(GraphstoreConfig, "The on-disk graph store.")
    sampler: SamplerConfig = section(SamplerConfig, "Random walks, pairs and negatives.")
    worker: WorkerConfig = section(WorkerConfig, "Producers, supervisor and transport.")
    trainer: TrainerConfig = section(TrainerConfig, "Model, loss, optimisation, checkpoints.")
    serving: ServingConfig = section(ServingConfig, "Embeddings, index, queries, evaluation.")
    monitoring: MonitoringConfig = section(MonitoringConfig, "Metrics and dashboard.")


def load(path: str | Path | None, overrides: list[str] | tuple[str, ...] = ()) -> Config:
    """Read and validate a TOML config (None: all defaults), then apply
    `section.key=value` overrides (values parsed as TOML, bare words as strings)."""
    data = {}
    if path is not None:
        path = Path(path)
        try:
            data = tomllib.loads(path.read_text())
        except FileNotFoundError as err:
            raise ConfigError(f"{path}: config file not found; pass an existing file "
                              "or omit --config for the defaults") from err
        except tomllib.TOMLDecodeError as err:
            raise ConfigError(f"{path}: not valid TOML: {err}") from err
        except ValueError as err:  # Python refuses int(str) past 4300 digits
            raise ConfigError(f"{path}: {_HUGE}") from err
        except RecursionError as err:
            raise ConfigError(f"{path}: arrays or tables nested too deeply") from err
    try:
        config = from_dict(data)
    except RecursionError as err:
        raise ConfigError(f"{path}: a setting nested too deeply") from err
    for item in overrides:
        config = override(config, item)
    return config


_HUGE = ("an integer of more than 4300 digits; integer settings must fit in 64 bits "
         "(|x| < 2**63)")


def from_dict(data: dict) -> Config:
    return build(Config, data)


def override(config: Config, item: str) -> Config:
    """Apply one `dotted.path=value` override."""
    key, sep, raw = item.partition("=")
    if not sep or not key.strip():
        raise ConfigError(f"override {item!r}: expected section.key=value, "
                          "e.g. sampler.num_walks=20")
    try:
        value = tomllib.loads(f"v = {raw}")["v"]
    except tomllib.TOMLDecodeError:
        value = raw
    except ValueError as err:  # Python refuses int(str) past 4300 digits
        raise ConfigError(f"{key.strip()}: {_HUGE}") from err
    except RecursionError as err:
        raise ConfigError(f"{key.strip()}: value nested too deeply to be a setting") from err
    return replace(config, key.strip(), value)


def to_toml(config: Config) -> str:
    """The resolved config as TOML text (what `sagewalk config show` prints)."""
    lines = []
    for name, values in to_dict(config).items():
        lines.append(f"[{name}]")
        for key, value in values.items():
            lines.append(f"{key} = {_toml_value(value)}")
        lines.append("")
    return "\n".join(lines)


def _toml_value(value) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, str):
        return '"' + value.replace("\\", "\\\\").replace('"', '\\"') + '"'
    if isinstance(value, (list, tuple)):
        return "[" + ", ".join(_toml_value(v) for v in value) + "]"
    if isinstance(value, dict):
        return "{" + ", ".join(f'"{k}" = {_toml_value(v)}' for k, v in value.items()) + "}"
    return repr(value)
