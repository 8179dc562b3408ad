"""Personal data: Spark's HMAC equals Python's, and personal values are masked in kept lines."""

from __future__ import annotations

import hashlib
import hmac

import pytest
from pyspark.sql import functions as F

from jobs.privacy import REDACTED, hmac_sha256, mask_free_text, redact_pii
from pipeline.source_mapping import load_mapping


@pytest.mark.parametrize(
    "secret", [b"s3cret", b"k" * 64, b"a-key-longer-than-the-64-byte-block-" * 3], ids=len
)
def test_hmac_matches_pythons_hmac(spark, secret):
    values = ["someone@example.com", "17850", "ünïcødé", ""]
    df = spark.createDataFrame([(v,) for v in values] + [(None,)], "v string")
    got = [r.h for r in df.select(hmac_sha256(F.col("v"), secret).alias("h")).collect()]
    expected = [hmac.new(secret, v.encode(), hashlib.sha256).hexdigest() for v in values]
    assert got == expected + [None]


def test_personal_json_values_are_masked_even_in_a_broken_line(spark):
    mapping = load_mapping("sample_clickstream")  # pii_columns: email, ip
    lines = [
        '{"user_id": "u1", "email": "a@example.com", "ip": "10.1.2.3", "qty": 1}',
        '{"user_id": "u2", "email": "b@example.com", "ip": ',  # truncated
    ]
    df = spark.createDataFrame([(x,) for x in lines], "raw_line string")
    got = [
        r.x
        for r in df.select(
            redact_pii(F.col("raw_line"), mapping=mapping, columns=None).alias("x")
        ).collect()
    ]
    assert got[0] == f'{{"user_id": "u1", "email": "{REDACTED}", "ip": "{REDACTED}", "qty": 1}}'
    assert "b@example.com" not in got[1] and got[1].startswith('{"user_id": "u2"')


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("MUG - call 020 7946 0958 to order", "MUG - call <phone> to order"),
        ("ask jane.doe+shop@example.co.uk now", "ask <email> now"),
        ("+44 (20) 7946-0958 or +1-202-555-0143", "<phone> or <phone>"),
        ("SET OF 12 PENCILS 23 X 15 CM", "SET OF 12 PENCILS 23 X 15 CM"),  # no personal data
        # The fewest digits a phone number has (8), and one fewer.
        ("CALL 1234 5678", "CALL <phone>"),
        ("CALL 123 4567", "CALL 123 4567"),
        ("STOCK 85123A, 2010-12-01", "STOCK 85123A, 2010-12-01"),
        ("536365,85123A,6,2010-12-01 08:26:00,2.55", "536365,85123A,6,2010-12-01 08:26:00,2.55"),
        ('{"ts": "2026-01-03T10:00:00Z", "qty": 1}', '{"ts": "2026-01-03T10:00:00Z", "qty": 1}'),
        (None, None),
    ],
)
def test_free_text_loses_emails_and_phone_numbers(spark, text, expected):
    df = spark.createDataFrame([(text,)], "t string")
    assert df.select(mask_free_text(F.col("t")).alias("x")).first().x == expected
