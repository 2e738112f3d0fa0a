"""Versioned storage of trained models with their training window, features and scores.

Layout: ``<root>/<name>/<version>/model.pkl`` (the pickled model object; torch modules pickle
their tensors) and ``meta.json`` (:class:`ModelMetadata`). Versions are ``v0001, v0002, ...``
unless given. ``load`` returns the latest version by default. Pickles execute code when loaded:
load only stores this system wrote.

When a journal is given, each ``save`` also records the training run through
``journal.record_model_run(model, version, started, finished, params, metrics)``; any object with
that method works (:class:`RunRecorder`).
"""

from __future__ import annotations

import json
import os
import pickle
import re
import shutil
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from datetime import UTC, date, datetime
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

_VERSION = re.compile(r"^v(\d{4,})$")
_NAME = re.compile(r"^[A-Za-z0-9_.-]+$")
#: Metadata read so far, by version folder: a written version is never changed.
_META_CACHE: dict[tuple[str, int, int], ModelMetadata] = {}


@runtime_checkable
class RunRecorder(Protocol):
    """What the model store needs from the journal."""

    def record_model_run(
        self,
        model: str,
        version: str,
        started: datetime,
        finished: datetime,
        params: dict[str, Any],
        metrics: dict[str, Any],
    ) -> Any:
        """Journal one training run of ``model`` (the journal's method of that name)."""


@dataclass(frozen=True)
class ModelMetadata:
    """What was trained, on which window and features, and how it scored out of sample."""

    name: str
    version: str
    train_start: str
    train_end: str
    features: list[str]
    validation_scores: dict[str, float]
    params: dict[str, Any] = field(default_factory=dict)
    started: str = ""
    finished: str = ""


class ModelStore:
    """Save and load models by name and version under a root folder."""

    def __init__(self, root: str | Path, journal: RunRecorder | None = None) -> None:
        if journal is not None and not isinstance(journal, RunRecorder):
            raise ValueError("journal must have a record_model_run(...) method")
        self.root = Path(root)
        self.journal = journal

    def versions(self, name: str) -> list[str]:
        """Return the stored versions of ``name``, oldest first."""
        d = self.root / _check_name(name)
        if not d.is_dir():
            return []
        return sorted((p.name for p in d.iterdir() if _VERSION.match(p.name)), key=_vnum)

    def save(
        self,
        model: Any,
        name: str,
        *,
        train_start: Any,
        train_end: Any,
        features: list[str],
        validation_scores: dict[str, float],
        params: dict[str, Any] | None = None,
        started: datetime | None = None,
        finished: datetime | None = None,
        version: str | None = None,
    ) -> ModelMetadata:
        """Write the model and its metadata; record the run in the journal when there is one."""
        existing = self.versions(name)
        if version is None:
            version = f"v{(_vnum(existing[-1]) + 1) if existing else 1:04d}"
        elif not _VERSION.match(version):
            raise ValueError(f"version must look like v0001, got {version!r}")
        if version in existing:
            raise ValueError(f"{name} {version} already exists")
        finished = finished or datetime.now(UTC)
        started = started or finished
        meta = ModelMetadata(
            name=name,
            version=version,
            train_start=str(train_start),
            train_end=str(train_end),
            features=list(features),
            validation_scores={k: float(v) for k, v in validation_scores.items()},
            params=_jsonable(params or {}),
            started=started.isoformat(),
            finished=finished.isoformat(),
        )
        d = self.root / name / version
        # Written under a temporary name, then renamed: a crash mid-save leaves no version
        # folder that versions() or load() would take for a complete model.
        tmp = self.root / name / f".{version}.partial"
        if tmp.exists():
            shutil.rmtree(tmp)
        tmp.mkdir(parents=True)
        with open(tmp / "model.pkl", "wb") as fh:
            pickle.dump(model, fh, protocol=pickle.HIGHEST_PROTOCOL)
            fh.flush()
            os.fsync(fh.fileno())
        (tmp / "meta.json").write_text(json.dumps(asdict(meta), indent=2, sort_keys=True))
        tmp.rename(d)
        if self.journal is not None:
            self.journal.record_model_run(
                model=name,
                version=version,
                started=started,
                finished=finished,
                params=meta.params,
                metrics=meta.validation_scores,
            )
        return meta

    def metadata(self, name: str) -> list[ModelMetadata]:
        """Return the metadata of every stored version of ``name``, oldest version first.

        A version never changes once written, so each ``meta.json`` is parsed once per process
        (a folder deleted and written again is a new file, and is read again).
        """
        out = []
        for v in self.versions(name):
            path = self.root / name / v / "meta.json"
            st = path.stat()
            key = (str(path.resolve()), st.st_ino, st.st_mtime_ns)
            meta = _META_CACHE.get(key)
            if meta is None:
                meta = _META_CACHE[key] = ModelMetadata(**json.loads(path.read_text()))
            out.append(meta)
        return out

    def find(
        self,
        name: str,
        *,
        trained_by: date,
        max_age_days: int | None = None,
        accept: Callable[[ModelMetadata], bool] | None = None,
    ) -> ModelMetadata | None:
        """Return the version of ``name`` trained last on or before ``trained_by``, or None.

        Versions trained after ``trained_by`` are never returned (a backtest over earlier
        sessions may share the store with a later run: they would read the future), nor those
        older than ``max_age_days`` calendar days, nor those ``accept`` refuses. Among versions
        of the same training end the one written last wins. Rerunning a backtest over the same
        sessions thus finds, at each session, the model the first run trained by then.
        """
        best: ModelMetadata | None = None
        best_end: date | None = None
        for meta in self.metadata(name):
            end = date.fromisoformat(meta.train_end[:10])
            if end > trained_by:
                continue
            if max_age_days is not None and (trained_by - end).days > max_age_days:
                continue
            if accept is not None and not accept(meta):
                continue
            if best_end is None or end >= best_end:
                best, best_end = meta, end
        return best

    def load(self, name: str, version: str | None = None) -> tuple[Any, ModelMetadata]:
        """Return the model and its metadata (latest version unless ``version`` is given)."""
        versions = self.versions(name)
        if not versions:
            raise ValueError(f"no stored model named {name!r} under {self.root}")
        version = version or versions[-1]
        if version not in versions:
            raise ValueError(f"{name!r} has no version {version!r}; stored: {versions}")
        d = self.root / name / version
        meta = ModelMetadata(**json.loads((d / "meta.json").read_text()))
        with open(d / "model.pkl", "rb") as fh:
            model = pickle.load(fh)
        return model, meta


def _vnum(v: str) -> int:
    m = _VERSION.match(v)
    return int(m.group(1)) if m else -1


def _check_name(name: str) -> str:
    if not _NAME.match(name):
        raise ValueError(f"model name may hold letters, digits, '_', '.', '-' only, got {name!r}")
    return name


def _jsonable(d: dict[str, Any]) -> dict[str, Any]:
    out: dict[str, Any] = json.loads(json.dumps(d, default=str))
    return out
