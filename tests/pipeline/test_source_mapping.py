"""Source mappings: the shipped files and the template load; mistakes fail with the reason."""

from __future__ import annotations

from pathlib import Path

import pytest
import yaml
from pydantic import ValidationError

from pipeline.source_mapping import (
    SOURCES_DIR,
    SourceMapping,
    UnknownSourceError,
    load_mapping,
    packaged_sources,
)


def test_every_shipped_mapping_and_the_template_load():
    assert packaged_sources() == ["online_retail", "sample_clickstream"]
    for path in SOURCES_DIR.glob("*.yaml"):
        mapping = load_mapping(path)
        assert mapping.name == path.stem or path.stem == "template"
    template = load_mapping(SOURCES_DIR / "template.yaml")
    assert template.columns.user_id == "customer" and template.timestamp.formats[0] == "iso8601"


def test_horizons_belong_to_the_source():
    retail, sample = load_mapping("online_retail"), load_mapping("sample_clickstream")
    assert (retail.labels.purchase_horizon_days, retail.labels.churn_horizon_days,
            retail.labels.lookback_days) == (30, 90, 365)  # fmt: skip
    assert (sample.labels.purchase_horizon_days, sample.labels.churn_horizon_days) == (7, 14)


def _template() -> dict:
    return yaml.safe_load((SOURCES_DIR / "template.yaml").read_text())


@pytest.mark.parametrize(
    ("change", "message"),
    [
        (lambda m: m["event_types"].update(click="clik"), "map to unknown types"),
        (lambda m: m.update(pii_hash_columns=["phone"]), "are not mapped columns"),
        (lambda m: m.update(colour="red"), "Extra inputs are not permitted"),
        (lambda m: m.update(name="My Shop"), "String should match pattern"),
        (lambda m: m["labels"].update(churn_horizon_days=0), "greater than 0"),
        (lambda m: m["monitoring"].update(psi_warn=0.3, psi_fail=0.2), "must be >= psi_warn"),
        (lambda m: m["columns"].pop("user_id"), "user_id"),
        (
            lambda m: (m["columns"].update(event_type=None), m.update(default_event_type=None)),
            "map columns.event_type or set default_event_type",
        ),
    ],
)
def test_mistakes_fail_with_the_reason(change, message):
    raw = _template()
    change(raw)
    with pytest.raises(ValidationError, match=message):
        SourceMapping.model_validate(raw)


def test_an_unknown_source_names_the_packaged_ones(tmp_path):
    with pytest.raises(UnknownSourceError, match=r"no source mapping 'nope'.*online_retail"):
        load_mapping("nope")
    with pytest.raises(UnknownSourceError):
        load_mapping(Path(tmp_path / "missing.yaml"))
