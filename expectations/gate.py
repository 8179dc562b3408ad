"""Run a suite on a pandas DataFrame and fail loudly.

The GX Airflow operator hands results downstream; a gate must stop the run itself, so ``run_gate``
raises ``DataQualityError`` naming each failing expectation with a few offending rows, and writes the
full validation result as JSON (the run's data docs) whatever the outcome.
"""

from __future__ import annotations

import json
import logging
from collections.abc import Sequence
from pathlib import Path

import pandas as pd

log = logging.getLogger(__name__)

SAMPLE_ROWS = 5


class DataQualityError(RuntimeError):
    """A gate failed: the data must not move to the next stage."""


def _context():
    import great_expectations as gx

    ctx = gx.get_context(mode="ephemeral")
    try:  # progress bars flood task logs
        from great_expectations.data_context.types.base import ProgressBarsConfig

        ctx.variables.progress_bars = ProgressBarsConfig(globally=False)
    except Exception:  # noqa: BLE001 - cosmetic only
        pass
    return ctx


def run_gate(
    suite_name: str,
    data: pd.DataFrame,
    expectations: Sequence,
    *,
    docs_path: Path | None = None,
    site: Path | None = None,
    run_name: str | None = None,
) -> dict:
    """Validate ``data`` against ``expectations``; raise DataQualityError if any fails.

    ``docs_path``: the validation result as JSON. ``site``: the source's Data Docs site, where
    this run's page is filed under ``run_name`` (the run date: a rerun replaces its own page;
    ``expectations.data_docs``). Returns the validation result as a JSON-ready dict.
    """
    import tempfile

    import great_expectations as gx
    from great_expectations.core.run_identifier import RunIdentifier

    ctx = _context()
    actions = []
    built = tempfile.TemporaryDirectory(prefix="gx-site-") if site is not None else None
    site_dir = Path(built.name) if built is not None else None
    if site_dir is not None:
        ctx.add_data_docs_site(
            site_name="pipeline",
            site_config={
                "class_name": "SiteBuilder",
                "site_index_builder": {"class_name": "DefaultSiteIndexBuilder"},
                "store_backend": {
                    "class_name": "TupleFilesystemStoreBackend",
                    "base_directory": str(site_dir),
                },
            },
        )
        actions.append(
            gx.checkpoint.UpdateDataDocsAction(name="data_docs", site_names=["pipeline"])
        )
    batch = (
        ctx.data_sources.add_pandas(f"{suite_name}_source")
        .add_dataframe_asset(suite_name)
        .add_batch_definition_whole_dataframe("whole")
    )
    suite = ctx.suites.add(gx.ExpectationSuite(name=suite_name))
    for e in expectations:
        suite.add_expectation(e)
    definition = ctx.validation_definitions.add(
        gx.ValidationDefinition(name=f"{suite_name}_validation", data=batch, suite=suite)
    )
    checkpoint = ctx.checkpoints.add(
        gx.Checkpoint(
            name=f"{suite_name}_checkpoint",
            validation_definitions=[definition],
            actions=actions,
            result_format={"result_format": "COMPLETE"},
        )
    )
    data = data.reset_index(drop=True)
    run_id = None
    if run_name is not None:
        # Named by the run, timed by the run's date: never by "now", so reruns overwrite.
        run_id = RunIdentifier(
            run_name=run_name, run_time=pd.Timestamp(run_name[:10], tz="UTC").to_pydatetime()
        )
    try:
        outcome = checkpoint.run(batch_parameters={"dataframe": data}, run_id=run_id)
        if site is not None:
            from expectations.data_docs import publish_page

            publish_page(
                site, built_site=site_dir, run_date=run_name or "unnamed", suite=suite_name
            )
    finally:
        if built is not None:
            built.cleanup()
    (result,) = outcome.run_results.values()
    described = json.loads(result.describe())
    if docs_path is not None:
        docs_path.parent.mkdir(parents=True, exist_ok=True)
        docs_path.write_text(json.dumps(described, indent=2, default=str))
    failures = [r for r in result.results if not r.success]
    if failures:
        raise DataQualityError(_explain(suite_name, data, failures, docs_path))
    log.info("%s: %d expectations passed on %d rows", suite_name, len(result.results), len(data))
    return described


def _explain(suite_name: str, data: pd.DataFrame, failures: list, docs_path: Path | None) -> str:
    lines = [f"Data quality gate {suite_name!r} failed {len(failures)} expectation(s):"]
    with pd.option_context("display.width", 200, "display.max_columns", 20):
        for r in failures:
            cfg = r.expectation_config
            kwargs = {k: v for k, v in cfg.kwargs.items() if k != "batch_id"}
            res = r.result or {}
            detail = f"{res.get('unexpected_count', '?')} unexpected rows"
            if "observed_value" in res:
                detail = f"observed {res['observed_value']}"
            lines.append(f"- {cfg.type} {kwargs}: {detail}")
            index = res.get("unexpected_index_list") or []
            if index:
                sample = data.loc[[i for i in index[:SAMPLE_ROWS] if i in data.index]]
                lines.append("  offending rows:\n    " + sample.to_string().replace("\n", "\n    "))
    if docs_path is not None:
        lines.append(f"Full validation result: {docs_path}")
    return "\n".join(lines)
