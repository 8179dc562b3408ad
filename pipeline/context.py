"""The run context an entry point builds once and passes down.

A DAG task or a CLI turns its arguments into a ``RunContext`` (settings read from the environment
once, the source mapping loaded once, the lake folder, the logical date); everything below takes
the context or plain values from it and never reads the environment itself.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import date
from functools import cached_property
from pathlib import Path

from pipeline.lake import Lake
from pipeline.settings import Settings
from pipeline.source_mapping import SourceMapping, load_mapping
from pipeline.warehouse import Warehouse


@dataclass(frozen=True)
class RunContext:
    settings: Settings
    mapping: SourceMapping
    run_date: date

    @classmethod
    def create(
        cls, source: str | Path, run_date: date, *, settings: Settings | None = None
    ) -> RunContext:
        """For an entry point: load the mapping (by name or path) and the settings."""
        return cls(settings or Settings.from_env(), load_mapping(source), run_date)

    @property
    def source(self) -> str:
        return self.mapping.name

    @property
    def lake(self) -> Lake:
        return Lake(self.settings.source_lake(self.mapping.name))

    @property
    def raw_root(self) -> Path:
        return self.settings.raw_dir / self.mapping.name

    @property
    def data_docs_dir(self) -> Path:
        return self.settings.data_docs_dir / self.mapping.name

    @cached_property
    def warehouse(self) -> Warehouse:
        return Warehouse(self.settings.warehouse_url)

    @property
    def registered_model_name(self) -> str:
        return self.settings.registered_model_name(self.mapping.name)
