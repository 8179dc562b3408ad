"""Airflow DAG files, plus the runners that drive them from a shell (demo.py, run.py)."""
