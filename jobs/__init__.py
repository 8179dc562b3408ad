"""Spark jobs: clean, sessionize and load raw clickstream files into the lake (pyspark only here)."""
