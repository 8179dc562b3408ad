"""The sample generator: seeded, and its manifest counts exactly what its files hold."""

from __future__ import annotations

import json

from pipeline.sample_data import SampleConfig, canonical_events, generate


def test_same_seed_same_files_and_the_manifest_counts_every_line(tmp_path):
    cfg = SampleConfig(days=3, users=40, seed=4)
    a, b = generate(tmp_path / "a", cfg), generate(tmp_path / "b", cfg)
    assert a == b
    for day, counts in a["files"].items():
        lines = (tmp_path / "a" / f"date={day}" / "events.jsonl").read_text().splitlines()
        assert counts["raw_rows"] == len(lines) > 0
        malformed = 0
        for line in lines:
            try:
                json.loads(line)
            except json.JSONDecodeError:
                malformed += 1
        assert counts.get("malformed", 0) == malformed
    assert json.loads((tmp_path / "a" / "_manifest.json").read_text()) == a


def test_canonical_events_follow_the_contract():
    events = canonical_events(SampleConfig(days=3, users=20, seed=4))
    assert set(events["event_type"]) <= {"view", "cart", "wishlist", "purchase", "return"}
    assert str(events["event_time"].dt.tz) == "UTC" and events["event_id"].is_unique
