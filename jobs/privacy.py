"""Personal data: HMAC-SHA256 of identifying columns, masking of personal values in kept raw lines."""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipeline.source_mapping import SourceMapping

REDACTED = "<redacted>"


def hmac_sha256(value: Column, secret: bytes) -> Column:
    """HMAC-SHA256 (RFC 2104) of a string column, hex encoded, from Spark built-ins."""
    key = secret if len(secret) <= 64 else hashlib.sha256(secret).digest()
    key = key.ljust(64, b"\0")
    ipad = bytes(b ^ 0x36 for b in key)
    opad = bytes(b ^ 0x5C for b in key)
    inner = F.unhex(F.sha2(F.concat(F.lit(ipad), F.encode(value, "UTF-8")), 256))
    return F.when(value.isNotNull(), F.sha2(F.concat(F.lit(opad), inner), 256))


def redact_pii(
    raw_line: Column, *, mapping: SourceMapping, columns: tuple[str, ...] | None
) -> Column:
    """The raw line as kept in quarantine: personal values masked.

    JSON lines: the values of personal keys are masked in the text, even in a malformed line.
    CSV: a parsed line is rewritten with personal columns masked; a line that did not parse cannot
    be masked reliably, so only its hash is kept.
    """
    personal = [*mapping.pii_columns, *mapping.pii_hash_columns]
    if not personal:
        return raw_line
    if mapping.format == "jsonl":
        for name in personal:
            pattern = rf'("{name}"\s*:\s*)("(?:[^"\\]|\\.)*"?|[^,}}]*)'
            raw_line = F.regexp_replace(raw_line, pattern, rf'$1"{REDACTED}"')
        return raw_line
    header = columns or ()
    masked = F.to_csv(
        F.struct(
            *[(F.lit(REDACTED) if c in personal else F.col(f"p.`{c}`")).alias(c) for c in header]
        ),
        {"sep": mapping.csv_delimiter},
    )
    withheld = F.concat(
        F.lit("<withheld: unparsed line with personal columns; sha256="),
        F.sha2(raw_line, 256),
        F.lit(">"),
    )
    return F.when(F.col("parse_ok") & F.lit(bool(header)), masked).otherwise(withheld)
