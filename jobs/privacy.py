"""Personal data: HMAC-SHA256 of identifying columns, masking of personal values in kept raw lines."""

from __future__ import annotations

import hashlib

from pyspark.sql import Column
from pyspark.sql import functions as F

from pipeline.source_mapping import SourceMapping

REDACTED = "<redacted>"
EMAIL_MASK, PHONE_MASK = "<email>", "<phone>"
_EMAIL = r"[A-Za-z0-9._%+-]+@[A-Za-z0-9-]+(?:\.[A-Za-z0-9-]+)*\.[A-Za-z]{2,}"
# 8 to 15 digits, optionally led by + and split by spaces, dots, dashes or brackets: a phone
# number. Product codes and sizes ("SET OF 12", "23 X 15 CM") have fewer digits in a row; dates
# ("2010-12-01 08:26", "01.12.2010") are not phone numbers.
_DATE = r"\d{4}-\d{2}-\d{2}|\d{2}[./-]\d{2}[./-]\d{4}"
_PHONE = rf"(?<![\w+])(?!{_DATE})\+?\(?\d(?:[ .()-]{{0,2}}\d){{7,14}}(?![\w:])"


def mask_free_text(text: Column) -> Column:
    """E-mail addresses and phone numbers inside free text (an item description, a raw line)
    replaced by ``<email>`` / ``<phone>``, so they never reach the lake, the embeddings or a table.

    The e-mail regex, the costlier by far (3x the phone one on the sample descriptions), runs
    only where an "@" is.
    """
    emails = F.when(text.contains("@"), F.regexp_replace(text, _EMAIL, EMAIL_MASK)).otherwise(text)
    return F.regexp_replace(emails, _PHONE, PHONE_MASK)


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
