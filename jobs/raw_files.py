"""Finding and checking raw files before Spark reads them.

A file that cannot be read at all (a truncated gzip, a CSV whose header lacks the mapped columns)
fails the run here, with a message that names the file and the cause, instead of a JVM stack trace
half-way through a job.
"""

from __future__ import annotations

import csv
import gzip
import io
import zlib
from dataclasses import dataclass
from datetime import date, datetime
from pathlib import Path

from pipeline.source_mapping import SourceMapping


class RawFileError(RuntimeError):
    """A raw file cannot be read; the message names the file and the cause."""


@dataclass(frozen=True)
class RawFile:
    path: Path
    # The day the file arrived (its day folder); None for an export outside day folders (its rows
    # are then owned by their event day).
    arrival_date: date | None
    # CSV: the header's column names, in file order; None for JSON lines or an empty file.
    columns: tuple[str, ...] | None


def day_files(raw_root: Path, mapping: SourceMapping, day: date) -> list[Path]:
    """Files that arrived on ``day`` (``<raw_root>/<day_folder>/*``)."""
    folder = raw_root / day.strftime(mapping.day_folder)
    return list_files(folder) if folder.is_dir() else []


def arrival_day(relative: Path, mapping: SourceMapping) -> date | None:
    """The arrival day of a file at ``relative`` (to the raw root), if it lies in a day folder."""
    parts = relative.parent.parts
    for n in range(1, len(parts) + 1):
        try:
            return datetime.strptime("/".join(parts[:n]), mapping.day_folder).date()
        except ValueError:
            continue
    return None


def split_by_arrival(
    path: Path, mapping: SourceMapping
) -> tuple[dict[date, list[Path]], list[Path]]:
    """Files under ``path``: those in arrival-day folders (``mapping.day_folder``) by day, and
    the others (an export dropped anywhere else, or ``path`` itself when it is a file)."""
    if path.is_file():
        return {}, [path]
    by_day: dict[date, list[Path]] = {}
    undated = []
    for f in list_files(path):
        day = arrival_day(f.relative_to(path), mapping)
        if day is None:
            undated.append(f)
        else:
            by_day.setdefault(day, []).append(f)
    return by_day, undated


def list_files(path: Path) -> list[Path]:
    """A file, or every data file under a folder (hidden and ``_`` files skipped)."""
    if path.is_file():
        return [path]
    if not path.exists():
        raise RawFileError(f"{path}: no such file or folder")
    return sorted(
        p
        for p in path.rglob("*")
        if p.is_file()
        and not any(part.startswith((".", "_")) for part in p.relative_to(path).parts)
    )


def _open(path: Path):
    return gzip.open(path, "rb") if path.suffix == ".gz" else path.open("rb")


def check_readable(path: Path) -> None:
    """Fail now on a file Spark could not read to the end (only compressed files can be)."""
    if path.suffix != ".gz":
        return
    try:
        with gzip.open(path, "rb") as f:
            while f.read(1 << 22):
                pass
    except (EOFError, OSError, zlib.error) as e:
        raise RawFileError(f"{path}: cannot be read: truncated or corrupt gzip ({e})") from e


def read_header(path: Path, mapping: SourceMapping) -> tuple[str, ...] | None:
    """The CSV header's column names (BOM and quotes removed); None for an empty file."""
    with _open(path) as f:
        first = f.readline()
    if not first.strip():
        return None
    text = first.decode("utf-8-sig", errors="replace").rstrip("\r\n")
    return tuple(
        c.strip() for c in next(csv.reader(io.StringIO(text), delimiter=mapping.csv_delimiter))
    )


def inspect(path: Path, mapping: SourceMapping, arrival_date: date | None) -> RawFile:
    check_readable(path)
    if mapping.format != "csv":
        return RawFile(path, arrival_date, None)
    header = read_header(path, mapping)
    if header is not None:
        missing = [c for c in mapping.required_columns if c not in header]
        if missing:
            raise RawFileError(
                f"{path}: header lacks the mapped column(s) {missing}; read it as {list(header)[:8]} "
                f"with delimiter {mapping.csv_delimiter!r} (wrong delimiter, or a renamed column?)"
            )
    return RawFile(path, arrival_date, header)
