"""Great Expectations suites, as code, that gate every stage of the pipeline."""

from expectations.gate import DataQualityError, run_gate

__all__ = ["DataQualityError", "run_gate"]
