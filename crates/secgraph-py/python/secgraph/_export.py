"""``secgraph.export``: the incremental Parquet dataset of every alert and incident version, as ``secgraph export``."""

from __future__ import annotations

import json
import os
import warnings
from typing import Any, Iterable, Mapping

from . import _native

_STREAMS = ("alerts_v2", "incidents")


def export(
    root: str | os.PathLike,
    *,
    config: str | os.PathLike | None = None,
    instances: Iterable[str] | None = None,
    all_instances: bool = False,
    streams: Iterable[str] = _STREAMS,
    since: str | None = None,
    shard: tuple[int, int] | None = None,
    storage_options: Mapping[str, str] | None = None,
    page_size: int = 1000,
    overlap_minutes: int = 5,
    missing_checkpoint: str = "refuse",
    tenants: str | os.PathLike | None = None,
    tenant_tags: Iterable[str] | None = None,
    tenant_ids: Iterable[str] | None = None,
    **connect_kwargs: Any,
) -> Any:
    """Brings the dataset under ``root`` (a folder, or ``az://``/``s3://``/``gs://``) up to date for each instance —
    the same library run as ``secgraph export``: one checkpoint and one writer per tenant and stream, crash-safe,
    sharded with ``shard=(k, n)``.

    Returns the run summary as a pandas DataFrame, one row per tenant and stream (``new_versions``,
    ``already_stored``, ``rejected``, ``watermark_after``, ``error``…). A (tenant, stream) that failed — another
    export holding its lock, a tenant that would not sign in — has its ``error`` set, and a warning names it; the
    others were committed. If every one failed, ``OutputError`` is raised with their messages.

    ``missing_checkpoint``: ``"refuse"`` (default), ``"rebuild"`` (from the data files) or ``"force"`` when a tenant's
    checkpoint is gone but its data is there. ``tenants`` (a tenants file; or an instance's ``Args.Tenants``) exports
    each of its tenants, narrowed by ``tenant_tags`` and ``tenant_ids``. Other keyword arguments are ``connect()``'s
    (``tenant_id``…).
    """
    import pandas as pd

    if isinstance(streams, str):
        streams = [s for s in streams.split(",") if s.strip()]
    if instances is not None and isinstance(instances, str):
        instances = [i for i in instances.split(",") if i.strip()]
    for k, v in connect_kwargs.items():
        if v is not None and not isinstance(v, (str, os.PathLike, int, bool)):
            raise TypeError(f"export(): {k} must be text (str), not {type(v).__name__}")
    options = {k: (str(v) if isinstance(v, os.PathLike) else v) for k, v in connect_kwargs.items()}
    text = _native.export(
        str(config) if config is not None else None,
        str(root),
        list(instances or []),
        bool(all_instances),
        list(streams),
        since,
        tuple(shard) if shard is not None else None,
        [(str(k), str(v)) for k, v in (storage_options or {}).items()],
        int(page_size),
        int(overlap_minutes),
        missing_checkpoint,
        options,
        os.fspath(tenants) if tenants is not None else None,
        [str(t) for t in ([tenant_tags] if isinstance(tenant_tags, str) else (tenant_tags or []))],
        [str(t) for t in ([tenant_ids] if isinstance(tenant_ids, str) else (tenant_ids or []))],
    )
    reports = json.loads(text)
    failed = [r for r in reports if r.get("error")]
    if reports and len(failed) == len(reports):
        raise _native.OutputError(
            "every export run failed: " + "; ".join(f"{r['instance']} {r['stream']}: {r['error']}" for r in failed)
        )
    for r in failed:
        warnings.warn(f"{r['instance']} {r['stream']}: not exported (the next run retries): {r['error']}", stacklevel=2)
    frame = pd.DataFrame(reports)
    return frame
