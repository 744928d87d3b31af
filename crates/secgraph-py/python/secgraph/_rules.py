"""Detection rules as code from Python: ``qp.rules.list()``, ``qp.rules.plan(folder)``, ``qp.rules.apply(folder,
yes=True)`` — the library's plans (``secgraph rules`` on the command line, docs/RULES.md) over the tenants a query
across tenants reaches: the provider's instance (or ``instances=[...]``), each expanded into the tenants of its
tenants file. Every result is a pandas DataFrame with ``TenantId``, ``Tenant`` and ``Instance`` first; each tenant's
status is ``df.attrs["secgraph_status"]`` (tenant, name, instance, error). A tenant that failed is named in a
warning while the others' rows are kept; every tenant failing is an error.
"""

from __future__ import annotations

import json
import os
import warnings
from typing import Any

from . import _native


class Rules:
    """The provider's custom detection rules (``QueryProvider.rules``)."""

    def __init__(self, provider: Any):
        self._provider = provider

    def __repr__(self) -> str:
        return "<secgraph rules: list(), plan(folder), apply(folder, yes=True)>"

    def _run(self, op: str, folder: Any = None, prune: bool = False, instances: Any = None) -> Any:
        import pandas as pd

        p = self._provider
        p._native()
        config, options, prompt = p._connect_args
        t = p._tenants
        names = [str(i) for i in (instances or [p._instance])]
        if isinstance(instances, str):
            names = [i.strip() for i in instances.split(",") if i.strip()]
        text = _native.rules_run(
            op, config, options, names, os.fspath(folder) if folder is not None else None, bool(prune),
            t.get("file"), list(t.get("tags") or []), list(t.get("ids") or []), prompt, None,
        )
        entries = json.loads(text)
        status = pd.DataFrame(
            [(e["tenant"], e["name"], e["instance"], e["error"]) for e in entries],
            columns=["tenant", "name", "instance", "error"],
        )
        failed = [(e["name"], e["error"]) for e in entries if e["error"]]
        if failed and len(failed) == len(entries):
            raise _native.SecGraphError(
                ("every tenant failed: " if len(entries) > 1 else "")
                + "; ".join(f"{n}: {e}" for n, e in failed)
            )
        if failed:
            warnings.warn(
                "partial result: " + "; ".join(f"{n}: {e}" for n, e in failed)
                + f" ({len(failed)} of {len(entries)} tenant(s) failed; the others' rows are kept)",
                stacklevel=3,
            )
        rows = [r for e in entries for r in e["rows"]]
        frame = pd.DataFrame(rows)
        frame.attrs["secgraph_status"] = status
        p.last_status = status
        return frame

    def list(self, instances: Any = None) -> Any:
        """Every tenant's rules: id, key (empty for a rule secgraph does not manage), name, enabled, period,
        severity, last run (status, time, failure) and last modification."""
        return self._run("list", instances=instances)

    def plan(self, folder: str | os.PathLike, prune: bool = False, instances: Any = None) -> Any:
        """What applying ``folder`` (a rule file or a folder of them) would change: one row per tenant and rule
        with ``action`` (create, update, delete, unchanged, kept, unmanaged) and ``fields`` (the fields that
        differ: field, remote, local). The folder is checked first; a problem raises with its file, line and
        field before anything is sent."""
        return self._run("plan", folder, prune, instances)

    def apply(self, folder: str | os.PathLike, yes: bool = False, prune: bool = False, instances: Any = None) -> Any:
        """Makes each tenant's rules the folder's. Without ``yes=True`` nothing is sent: the plan is returned
        (as :meth:`plan`). With it, each row also has ``outcome`` (done, skipped, conflict, failed) and
        ``reason``: a rule edited on the service since the plan is a conflict and is not overwritten."""
        if not yes:
            return self._run("plan", folder, prune, instances)
        return self._run("apply", folder, prune, instances)
