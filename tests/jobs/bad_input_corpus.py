"""A corpus of broken raw input, each case with the exact outcome the pipeline must produce.

Cases are built in code (bytes), so the corpus is reviewable in a diff and needs no binary files.
``expected`` maps each outcome (a quarantine reason, "clean" or "duplicate") to its row count;
``error`` is a pattern the run's error message must match when the file cannot be read at all.
"""

from __future__ import annotations

import gzip
import json
from dataclasses import dataclass, field

from pipeline.source_mapping import SourceMapping

_COMMON = {
    "columns": {"event_id": "id", "user_id": "user", "event_time": "ts", "event_type": "type",
                "item_id": "item", "price": "price", "quantity": "qty"},
    "event_types": {"view": "view", "buy": "purchase"},
    "pii_columns": ["email"],
}  # fmt: skip
CSV = SourceMapping.model_validate(
    _COMMON
    | {
        "name": "corpus_csv",
        "format": "csv",
        "timestamp": {"format": ["iso8601", "yyyy/MM/dd HH:mm", "epoch_ms"], "timezone": "UTC"},
    }
)
JSONL = SourceMapping.model_validate(_COMMON | {"name": "corpus_jsonl", "format": "jsonl"})

HEADER = "id,user,ts,type,item,price,qty,email"


def row(
    i: int, *, user="u1", ts="2026-01-05T10:00:00Z", type_="view", item="I1", price="1.5", qty="1"
) -> str:
    return f"e{i},{user},{ts},{type_},{item},{price},{qty},person{i}@example.com"


def csv(*lines: str, newline: str = "\n") -> bytes:
    return "".join(line + newline for line in lines).encode()


def jrow(i: int, **overrides) -> str:
    r = {"id": f"j{i}", "user": "u1", "ts": "2026-01-05T10:00:00Z", "type": "view", "item": "I1",
         "price": 1.5, "qty": 1, "email": f"person{i}@example.com"} | overrides  # fmt: skip
    return json.dumps(r)


@dataclass
class Case:
    name: str
    mapping: SourceMapping
    filename: str
    content: bytes
    expected: dict[str, int] = field(default_factory=dict)
    error: str | None = None


_valid = csv(HEADER, row(1), row(2), row(3))

CASES = [
    Case("truncated_gzip", CSV, "part.csv.gz", gzip.compress(_valid)[:-12], error=r"part\.csv\.gz: cannot be read: truncated or corrupt gzip"),
    Case("gzip_ok", CSV, "part.csv.gz", gzip.compress(_valid), {"clean": 3}),
    Case("empty_file", CSV, "empty.csv", b"", {}),
    Case("header_only", CSV, "header.csv", csv(HEADER), {}),
    Case("wrong_delimiter", CSV, "semi.csv", csv(HEADER.replace(",", ";"), row(1).replace(",", ";")),
         error=r"semi\.csv: header lacks the mapped column\(s\) \['user', 'ts', 'item', 'type'\].*wrong delimiter"),
    Case("utf8_bom", CSV, "bom.csv", b"\xef\xbb\xbf" + _valid, {"clean": 3}),
    Case("invalid_utf8", CSV, "latin1.csv", csv(HEADER, row(1)) + row(2, item="CAF\xc9").encode("latin-1") + b"\n", {"clean": 1, "bad_encoding": 1}),
    Case("one_megabyte_line", CSV, "long.csv", csv(HEADER, row(1), "x" * 1_000_000, row(2, item="I" * 1_000_000)), {"clean": 2, "malformed": 1}),
    Case("timestamp_formats", CSV, "times.csv",
         csv(HEADER, row(1), row(2, ts="2026/01/05 10:00"), row(3, ts="1767607200000"), row(4, ts="05.01.2026 10:00"), row(5, ts="")),
         {"clean": 3, "bad_timestamp": 2}),
    Case("prices", CSV, "prices.csv",
         csv(HEADER, row(1, price="-1"), row(2, price="NaN"), row(3, price="abc"), row(4, price="Infinity"), row(5, price=""), row(6, qty="2.5x")),
         {"negative_price": 1, "bad_number": 4, "clean": 1}),
    Case("unknown_event_types", CSV, "types.csv", csv(HEADER, row(1, type_="click"), row(2, type_=""), row(3, type_="buy")), {"unknown_event_type": 2, "clean": 1}),
    Case("missing_optional_columns", CSV, "noprice.csv", csv("id,user,ts,type,item", "e1,u1,2026-01-05T10:00:00Z,view,I1"), {"clean": 1}),
    Case("missing_required_column", CSV, "nouser.csv", csv("id,ts,type,item", "e1,2026-01-05T10:00:00Z,view,I1"), error=r"nouser\.csv: header lacks the mapped column\(s\) \['user'\]"),
    Case("extra_columns", CSV, "extra.csv", csv("coupon," + HEADER + ",referrer", "X," + row(1) + ",ads", "Y," + row(2) + ",mail"), {"clean": 2}),
    Case("repeated_header", CSV, "rehead.csv", csv(HEADER, row(1), HEADER, row(2)), {"clean": 2, "header_line": 1}),
    Case("windows_line_endings", CSV, "crlf.csv", csv(HEADER, row(1), row(2, qty="3"), newline="\r\n"), {"clean": 2}),
    Case("wrong_column_count", CSV, "count.csv", csv(HEADER, row(1), "e2,u1,2026-01-05T10:00:00Z", row(3) + ",surplus"), {"clean": 1, "malformed": 2}),
    Case("blank_lines", CSV, "blank.csv", csv(HEADER, row(1), "", "   ", row(2)), {"clean": 2, "malformed": 2}),
    Case("missing_user_and_item", CSV, "keys.csv", csv(HEADER, row(1, user=""), row(2, item="")), {"missing_user_id": 1, "missing_item_id": 1}),
    Case("duplicates", CSV, "dups.csv", csv(HEADER, row(1), row(1), row(2)), {"clean": 2, "duplicate": 1}),
    Case("outside_the_window", CSV, "window.csv", csv(HEADER, row(1, ts="2025-12-01T00:00:00Z"), row(2, ts="2026-03-01T00:00:00Z")), {"too_late": 1, "future_event": 1}),
    Case("nested_json", JSONL, "nested.jsonl", csv(jrow(1), jrow(2, user={"id": "u2"}), jrow(3, price=[1, 2]), jrow(4, item={"sku": "I"})), {"clean": 1, "nested_value": 3}),
    Case("truncated_json_line", JSONL, "cut.jsonl", csv(jrow(1), jrow(2)[:25], "not json at all", jrow(3)), {"clean": 2, "malformed": 2}),
    Case("json_bom_and_crlf", JSONL, "bom.jsonl", b"\xef\xbb\xbf" + csv(jrow(1), jrow(2), newline="\r\n"), {"clean": 2}),
    Case("json_nan_and_types", JSONL, "nan.jsonl",
         csv(jrow(1, price="NaN"), jrow(2, price=-3), jrow(3, type="purchase"), jrow(4, ts=1767607200000), jrow(5, user=None)),
         {"bad_number": 1, "negative_price": 1, "unknown_event_type": 1, "bad_timestamp": 1, "missing_user_id": 1}),
    Case("missing_event_id", CSV, "noid.csv", csv(HEADER, row(1), row(2).replace("e2,", ",", 1), row(3).replace("e3,", "  ,", 1)), {"clean": 1, "missing_event_id": 2}),
    # Ids made only of whitespace of any kind are missing, not users (tab, no-break and ideographic spaces).
    Case("whitespace_ids", JSONL, "space.jsonl", csv(jrow(1), jrow(2, user="\t"), jrow(3, user="\u00a0 \u3000"), jrow(4, item="\u200b"), jrow(5, user="\u00a0u5\t")),
         {"clean": 2, "missing_user_id": 2, "missing_item_id": 1}),
]  # fmt: skip
