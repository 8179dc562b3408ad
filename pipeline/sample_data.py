"""Deterministic sample clickstream with planted behaviour and realistic dirt.

    python -m pipeline.sample_data --out data/raw/sample_clickstream --days 60 --users 2000 --seed 7

Writes one folder per arrival day (``date=YYYY-MM-DD/events.jsonl``) in the ``sample_clickstream``
mapping's format, plus ``_manifest.json`` with the exact number of dirty rows planted per file, so
tests can assert the pipeline's quarantine counts to the row.

Planted behaviour (what the model should find):
- users differ in activity rate (sessions per day) and purchase propensity;
- about 40% of users churn: their activity fades over the ten days before their churn day, then stops;
- purchases follow views and carts of the same item in the same session; some purchases are returned.
Planted dirt: malformed lines, duplicate events (some in a later day's file), missing user ids,
unknown event types, negative prices, late events that land in a later day's file (within the
lateness window) and a few that arrive too late, and three bots firing bursts of page views.
"""

from __future__ import annotations

import argparse
import json
import math
import random
from collections import Counter, defaultdict
from dataclasses import asdict, dataclass
from datetime import UTC, date, datetime, timedelta
from pathlib import Path

import pandas as pd

CATEGORIES: dict[str, tuple[list[str], float]] = {
    # category: (nouns, median price)
    "kitchen": (["mug", "teapot", "jar", "bowl", "apron", "spoon set"], 8.0),
    "garden": (["planter", "watering can", "bird feeder", "trowel", "lantern"], 15.0),
    "toys": (["puzzle", "wooden train", "kite", "plush bear", "yo-yo"], 12.0),
    "stationery": (["notebook", "pen set", "gift wrap", "card pack", "sticker book"], 4.0),
    "home_decor": (["cushion", "candle holder", "photo frame", "clock", "vase"], 18.0),
    "bags": (["tote bag", "lunch bag", "backpack", "purse"], 14.0),
    "christmas": (["bauble", "advent calendar", "wreath", "tree topper", "stocking"], 9.0),
    "party": (["bunting", "napkins", "paper cups", "balloon kit"], 5.0),
}
ADJECTIVES = [
    "vintage",
    "retro",
    "red",
    "blue",
    "white",
    "pink",
    "spotty",
    "floral",
    "rustic",
    "mini",
]
RAW_TYPES = {
    "view": "page_view",
    "cart": "add_to_cart",
    "wishlist": "add_to_wishlist",
    "purchase": "order",
    "return": "refund",
}


@dataclass(frozen=True)
class SampleConfig:
    start: date = date(2026, 1, 1)
    days: int = 60
    users: int = 2000
    items: int = 300
    seed: int = 7
    # Dirt rates, per clean event.
    duplicate_rate: float = 0.015
    late_rate: float = 0.01
    malformed_rate: float = 0.002
    missing_user_rate: float = 0.003
    unknown_type_rate: float = 0.003
    negative_price_rate: float = 0.001
    # Events that arrive after the lateness window (5 days late): quarantined as too_late.
    very_late_rate: float = 0.0005
    # The pipeline's lateness allowance (the mapping's lateness_days): late events and duplicates
    # are planted within it, so the manifest says exactly what the pipeline must find.
    lateness_days: int = 2
    # Scripted users that fire bursts of page views (more than 60 a minute) on a few days.
    bots: int = 3


def _items(rng: random.Random, n: int) -> list[dict]:
    items = []
    cats = list(CATEGORIES)
    for i in range(n):
        cat = cats[i % len(cats)]
        nouns, median = CATEGORIES[cat]
        text = f"{rng.choice(ADJECTIVES)} {rng.choice(ADJECTIVES)} {rng.choice(nouns)}".upper()
        price = round(median * math.exp(rng.gauss(0, 0.4)), 2)
        items.append({"item_id": f"I{i:05d}", "category": cat, "item_text": text, "price": price})
    return items


def _user_events(rng: random.Random, cfg: SampleConfig, uid: str, items: list[dict]) -> list[dict]:
    rate = min(3.0, math.exp(rng.gauss(math.log(0.3), 0.9)))  # sessions per day
    propensity = rng.betavariate(1.5, 5.0)
    first_day = 0 if rng.random() < 0.7 else rng.randrange(0, cfg.days // 2)
    churn_day = rng.randrange(7, cfg.days + 20) if rng.random() < 0.4 else None
    liked = rng.sample(sorted(CATEGORIES), 2)
    by_cat = defaultdict(list)
    for it in items:
        by_cat[it["category"]].append(it)
    day0 = datetime.combine(cfg.start, datetime.min.time(), tzinfo=UTC)
    events: list[dict] = []
    for day in range(first_day, cfg.days):
        day_rate = rate
        if churn_day is not None:
            if day >= churn_day:
                break
            if churn_day - day <= 10:  # fading before churn: the planted churn signal
                day_rate *= (churn_day - day) / 11
        n_sessions = _poisson(rng, day_rate)
        for _ in range(n_sessions):
            t = day0 + timedelta(days=day, seconds=rng.randrange(7 * 3600, 23 * 3600))
            for _ in range(1 + _poisson(rng, 2.0)):
                cat = rng.choice(liked) if rng.random() < 0.7 else rng.choice(sorted(CATEGORIES))
                item = rng.choice(by_cat[cat])
                t += timedelta(seconds=5 + rng.expovariate(1 / 60))
                events.append(_event(rng, uid, "view", t, item, 1))
                if rng.random() < 0.05:
                    t += timedelta(seconds=5 + rng.expovariate(1 / 30))
                    events.append(_event(rng, uid, "wishlist", t, item, 1))
                if rng.random() < 0.15 + 0.5 * propensity:
                    qty = 1 + _poisson(rng, 0.5)
                    t += timedelta(seconds=5 + rng.expovariate(1 / 40))
                    events.append(_event(rng, uid, "cart", t, item, qty))
                    if rng.random() < min(0.9, 1.6 * propensity):
                        t += timedelta(seconds=30 + rng.expovariate(1 / 120))
                        events.append(_event(rng, uid, "purchase", t, item, qty))
                        if rng.random() < 0.04:
                            back = t + timedelta(
                                days=rng.randint(1, 5), seconds=rng.randrange(3600)
                            )
                            if back < day0 + timedelta(days=cfg.days):
                                events.append(_event(rng, uid, "return", back, item, qty))
    return events


def _bot_events(rng: random.Random, cfg: SampleConfig, uid: str, items: list[dict]) -> list[dict]:
    day0 = datetime.combine(cfg.start, datetime.min.time(), tzinfo=UTC)
    events = []
    for day in sorted(rng.sample(range(cfg.days), min(4, cfg.days))):
        t = day0 + timedelta(days=day, seconds=rng.randrange(3600, 22 * 3600))
        for k in range(90):  # 90 views in under a minute
            events.append(
                _event(rng, uid, "view", t + timedelta(milliseconds=600 * k), rng.choice(items), 1)
            )
    return events


def _poisson(rng: random.Random, lam: float) -> int:
    # Knuth's method: small lambdas only, which is all we need.
    limit, k, p = math.exp(-lam), 0, 1.0
    while True:
        p *= rng.random()
        if p <= limit:
            return k
        k += 1


def _event(rng: random.Random, uid: str, etype: str, t: datetime, item: dict, qty: int) -> dict:
    return {
        "event_id": f"e{rng.getrandbits(64):016x}",
        "user_id": uid,
        "ts": t.isoformat(timespec="milliseconds").replace("+00:00", "Z"),
        "type": RAW_TYPES[etype],
        "item_id": item["item_id"],
        "category": item["category"],
        "item_text": item["item_text"],
        "price": item["price"],
        "qty": qty,
        # Personal data the mapping marks as PII: must never reach the lake.
        "email": f"{uid}@example.com",
        "ip": f"10.{rng.randrange(256)}.{rng.randrange(256)}.{rng.randrange(1, 255)}",
    }


def simulate_events(cfg: SampleConfig = SampleConfig()) -> tuple[random.Random, list[dict]]:
    """The true events, before any dirt, in the raw export's format, sorted by time."""
    rng = random.Random(cfg.seed)
    items = _items(rng, cfg.items)
    events: list[dict] = []
    for u in range(cfg.users):
        events.extend(_user_events(rng, cfg, f"u{u:05d}", items))
    for b in range(cfg.bots):
        events.extend(_bot_events(rng, cfg, f"b{b:05d}", items))
    events.sort(key=lambda e: (e["ts"], e["event_id"]))
    return rng, events


def canonical_events(cfg: SampleConfig = SampleConfig()) -> pd.DataFrame:
    """The true events as the canonical contract (what a perfect pipeline would put in the lake)."""
    _, events = simulate_events(cfg)
    canonical = {v: k for k, v in RAW_TYPES.items()}
    df = pd.DataFrame(events)
    return pd.DataFrame(
        {
            "event_id": df["event_id"],
            "user_id": df["user_id"],
            "event_time": pd.to_datetime(df["ts"], utc=True).astype("datetime64[us, UTC]"),
            "event_type": df["type"].map(canonical),
            "item_id": df["item_id"],
            "category": df["category"],
            "item_text": df["item_text"],
            "price": df["price"].astype(float),
            "quantity": df["qty"].astype("int64"),
            "session_id": None,
        }
    )


def generate(out: Path, cfg: SampleConfig = SampleConfig()) -> dict:
    """Write the sample under ``out`` and return the manifest (also written as _manifest.json)."""
    rng, events = simulate_events(cfg)

    last_day = cfg.days - 1
    files: dict[int, list[str]] = defaultdict(list)
    planted: dict[int, Counter] = defaultdict(Counter)
    for e in events:
        day = (datetime.fromisoformat(e["ts"]).date() - cfg.start).days
        r = rng.random()
        kind = "clean"
        if r < cfg.malformed_rate:
            kind = "malformed"
        elif r < cfg.malformed_rate + cfg.missing_user_rate:
            kind, e["user_id"] = "missing_user_id", rng.choice([None, ""])
        elif r < cfg.malformed_rate + cfg.missing_user_rate + cfg.unknown_type_rate:
            kind, e["type"] = "unknown_event_type", "click"
        elif r < (
            cfg.malformed_rate
            + cfg.missing_user_rate
            + cfg.unknown_type_rate
            + cfg.negative_price_rate
        ):
            kind, e["price"] = "negative_price", -e["price"]
        arrival = day
        if kind == "clean" and rng.random() < cfg.late_rate:
            arrival = min(last_day, day + rng.randint(1, cfg.lateness_days))
            if arrival > day:
                planted[arrival]["late"] += 1
        elif kind == "clean" and day + 5 <= last_day and rng.random() < cfg.very_late_rate:
            kind, arrival = "too_late", day + 5
        line = json.dumps(e, separators=(",", ":"))
        if kind == "malformed":
            line = line[: rng.randrange(10, len(line) - 5)]
        planted[arrival][kind] += 1
        files[arrival].append(line)
        if kind == "clean" and rng.random() < cfg.duplicate_rate:
            # Some copies arrive the next day, never beyond the lateness window.
            next_day = arrival + 1 <= min(last_day, day + cfg.lateness_days)
            dup_day = arrival + 1 if next_day and rng.random() < 0.3 else arrival
            files[dup_day].append(line)
            planted[dup_day]["duplicate"] += 1

    manifest = {"config": {**asdict(cfg), "start": cfg.start.isoformat()}, "files": {}}
    for day in range(cfg.days):
        d = cfg.start + timedelta(days=day)
        folder = out / f"date={d.isoformat()}"
        folder.mkdir(parents=True, exist_ok=True)
        lines = files.get(day, [])
        (folder / "events.jsonl").write_text("".join(line + "\n" for line in lines))
        counts = planted.get(day, Counter())
        manifest["files"][d.isoformat()] = {"raw_rows": len(lines), **dict(sorted(counts.items()))}
    (out / "_manifest.json").write_text(json.dumps(manifest, indent=2))
    return manifest


def main(argv: list[str] | None = None) -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawTextHelpFormatter)
    p.add_argument("--out", type=Path, required=True)
    p.add_argument("--start", type=date.fromisoformat, default=SampleConfig.start)
    p.add_argument("--days", type=int, default=SampleConfig.days)
    p.add_argument("--users", type=int, default=SampleConfig.users)
    p.add_argument("--seed", type=int, default=SampleConfig.seed)
    a = p.parse_args(argv)
    m = generate(a.out, SampleConfig(start=a.start, days=a.days, users=a.users, seed=a.seed))
    total = sum(f["raw_rows"] for f in m["files"].values())
    print(f"wrote {total} raw rows in {len(m['files'])} daily folders under {a.out}")


if __name__ == "__main__":
    main()
