"""Spark jobs and the data layer: source mappings, cleaning, sessionizing, the warehouse."""
