"""Source mapping files: how one raw export becomes canonical events.

A data engineer adds a source by writing one YAML file (see ``pipeline/sources/template.yaml``); no
Python per source. ``load_mapping("sample_clickstream")`` reads a packaged mapping,
``load_mapping(path)`` reads any file. The mapping also carries what only the source's owner knows:
how late events arrive, what a bot looks like, and the label horizons that fit its customers.
"""

from __future__ import annotations

from pathlib import Path
from typing import Literal

import yaml
from pydantic import BaseModel, ConfigDict, Field, model_validator

from pipeline.contracts import EVENT_TYPES

SOURCES_DIR = Path(__file__).parent / "sources"


class Columns(BaseModel):
    """Source column name for each canonical field; None means the source does not have it."""

    model_config = ConfigDict(extra="forbid")
    event_id: str | None = (
        None  # None: the id is a hash of the raw line (exact duplicates collapse)
    )
    user_id: str
    event_time: str
    event_type: str | None = None  # None: every row is ``default_event_type``
    item_id: str
    category: str | None = None
    item_text: str | None = None
    price: str | None = None
    quantity: str | None = None
    session_id: str | None = None


class Timestamp(BaseModel):
    model_config = ConfigDict(extra="forbid")
    # "iso8601" (offsets honoured), "epoch_ms", "epoch_s", or a Spark datetime pattern; a list is
    # tried in order (the first format that parses wins).
    format: str | list[str] = "iso8601"

    @property
    def formats(self) -> list[str]:
        return [self.format] if isinstance(self.format, str) else list(self.format)

    # Zone of timestamps that carry no offset.
    timezone: str = "UTC"


class ReturnRule(BaseModel):
    """Rows matching any rule become ``return`` events with a positive quantity."""

    model_config = ConfigDict(extra="forbid")
    negative_quantity: bool = False
    column: str | None = None
    prefix: str | None = None


class Labels(BaseModel):
    """What churn and purchase mean for this source's customers (the model's label windows).

    A clickstream whose users come back every few days wants a week and two weeks; a wholesaler
    that orders monthly wants a month and a quarter. Training, scoring and evaluation read these.
    """

    model_config = ConfigDict(extra="forbid")
    # purchase = at least one purchase in [T, T + purchase_horizon_days)
    purchase_horizon_days: int = Field(7, gt=0)
    # churn = no event of any type in [T, T + churn_horizon_days)
    churn_horizon_days: int = Field(14, gt=0)
    # users with no event in [T - lookback_days, T) are not scored (nothing to say about them)
    lookback_days: int = Field(28, gt=0)


class Monitoring(BaseModel):
    """Model health for this source: population stability index (PSI) of each model input and
    score against the champion's reference population. The usual rule of thumb: below 0.1
    stable, 0.1 to 0.25 shifted (warn), above 0.25 drifted (the nightly_scoring run fails)."""

    model_config = ConfigDict(extra="forbid")
    psi_warn: float = Field(0.1, gt=0)
    psi_fail: float = Field(0.25, gt=0)
    # Inputs that trend by construction for this source (say why in the mapping): their PSI is
    # still computed and shown, with status "ok_trend"; they never warn or fail.
    trend_features: list[str] = []

    @model_validator(mode="after")
    def _check(self) -> Monitoring:
        if self.psi_fail < self.psi_warn:
            raise ValueError(f"psi_fail {self.psi_fail} must be >= psi_warn {self.psi_warn}")
        return self


class SourceMapping(BaseModel):
    model_config = ConfigDict(extra="forbid")
    name: str = Field(pattern=r"^[a-z][a-z0-9_]*$")
    description: str = ""
    format: Literal["jsonl", "csv"]
    # CSV files start with a header; columns are matched by name, so order and extra columns
    # do not matter.
    csv_delimiter: str = ","
    # Raw files for one arrival day live in <path>/<day_folder> (strftime pattern).
    day_folder: str = "date=%Y-%m-%d"
    columns: Columns
    timestamp: Timestamp = Timestamp()
    # Source event name -> canonical event type.
    event_types: dict[str, str] = {}
    default_event_type: str | None = None
    returns: ReturnRule = ReturnRule()
    # Personal columns: never parsed into events; masked in quarantined raw lines.
    pii_columns: list[str] = []
    # Mapped columns that identify a person (an e-mail as user id): replaced by HMAC-SHA256 with the
    # secret in the environment variable PIPELINE_PII_SECRET before anything is written.
    pii_hash_columns: list[str] = []
    # Users above this many events in one minute are flagged as bots: kept in the lake with the
    # flag, left out of training and scoring, counted in the run summary.
    bot_events_per_minute: int = Field(60, gt=0)
    # Inactivity gap that splits sessions, and how many days late an event may arrive.
    session_gap_minutes: int = Field(30, gt=0)
    lateness_days: int = Field(2, ge=0)
    labels: Labels = Labels()
    monitoring: Monitoring = Monitoring()

    @model_validator(mode="after")
    def _check(self) -> SourceMapping:
        bad = {v for v in self.event_types.values() if v not in EVENT_TYPES}
        if self.default_event_type is not None:
            bad |= {self.default_event_type} - set(EVENT_TYPES)
        if bad:
            raise ValueError(f"{self.name}: event_types map to unknown types {sorted(bad)}")
        unmapped = set(self.pii_hash_columns) - {v for v in self.columns.model_dump().values() if v}
        if unmapped:
            raise ValueError(
                f"{self.name}: pii_hash_columns {sorted(unmapped)} are not mapped columns"
            )
        if self.columns.event_type is None and self.default_event_type is None:
            raise ValueError(f"{self.name}: map columns.event_type or set default_event_type")
        return self

    @property
    def required_columns(self) -> list[str]:
        """Source columns without which no row can be an event."""
        c = self.columns
        return [x for x in (c.user_id, c.event_time, c.item_id, c.event_type) if x is not None]

    @property
    def raw_columns(self) -> list[str]:
        mapped = [c for c in self.columns.model_dump().values() if c is not None]
        extra = [self.returns.column] if self.returns.column else []
        return list(dict.fromkeys(mapped + extra))


def packaged_sources() -> list[str]:
    """Names of the mappings shipped in ``pipeline/sources/`` (the template excluded)."""
    return sorted(p.stem for p in SOURCES_DIR.glob("*.yaml") if p.stem != "template")


class UnknownSourceError(FileNotFoundError):
    """No mapping by that name or path: a configuration error, never worth a retry."""


def load_mapping(name_or_path: str | Path) -> SourceMapping:
    """Load a packaged mapping by name, or any mapping file by path."""
    path = Path(name_or_path)
    if not path.suffix:
        path = SOURCES_DIR / f"{name_or_path}.yaml"
    if not path.exists():
        raise UnknownSourceError(
            f"no source mapping {str(name_or_path)!r}; packaged: {packaged_sources()}"
        )
    with path.open() as f:
        return SourceMapping.model_validate(yaml.safe_load(f))
