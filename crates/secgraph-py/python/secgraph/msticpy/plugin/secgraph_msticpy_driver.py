"""msticpy data-provider plugin: ``QueryProvider("SecGraph")`` on secgraph's engine.

msticpy's plugin loader imports every module in the plugin folder and registers the ``DriverBase`` subclasses it
finds under their ``DATA_ENVIRONMENTS`` names. This module is imported only by msticpy, so msticpy is importable here.
"""

from __future__ import annotations

from typing import Any

import pandas as pd
from msticpy.data.drivers import DriverBase

from secgraph._provider import QueryProvider as _SecGraphProvider

_MARK = "secgraph:"
# msticpy runs a query as ``exec_query(query_text, query_source=…, **options)``, so a parameter named ``query`` (the
# KQL of Hunting.run) collides with its positional argument. Queries of this provider pass it under this name instead;
# ``query()`` below maps it back.
_QUERY_PARAM = "secgraph_query"
_CONNECT_KEYS = {
    "instance", "tenant_id", "client_id", "client_secret", "username", "certificate", "private_key", "api_root",
    "api_version", "delegated_auth", "auth_type", "token_cache", "config", "prompt",
}
# Keywords msticpy adds to every query call for its own drivers.
_MSTICPY_OPTIONS = {"time_span", "default_time_params", "query_source"}


class SecGraphDriver(DriverBase):
    """secgraph as a msticpy driver: the ``MicrosoftGraph`` settings, secgraph's queries, DataFrames back."""

    DATA_ENVIRONMENTS = ["SecGraph"]

    def __init__(self, **kwargs: Any):
        super().__init__(**kwargs)
        self._secgraph = _SecGraphProvider("SecurityGraph")
        self.set_driver_property("use_query_paths", False)
        self.set_driver_property("has_driver_queries", True)
        self._loaded = True

    def connect(self, connection_str: str | None = None, **kwargs: Any) -> None:
        """Connects as ``secgraph.QueryProvider.connect`` does (msticpy's connect keywords)."""
        options = {k: v for k, v in kwargs.items() if k in _CONNECT_KEYS}
        self._secgraph.connect(connection_str, **options)
        self._connected = True

    @property
    def driver_queries(self) -> list[dict[str, Any]]:
        """secgraph's queries, for msticpy to attach as ``qry_prov.<Family>.<name>``."""
        if not self._secgraph.connected:
            return []
        return [
            {
                "name": spec["name"],
                "query": f"{_MARK}{spec['family']}.{spec['name']}",
                "query_container": spec["family"],
                "description": spec["description"],
            }
            for spec in self._secgraph._specs
        ]

    def query(self, query: str, query_source: Any = None, **kwargs: Any) -> pd.DataFrame:
        """Runs a secgraph query (as attached by ``driver_queries``) or a raw Graph path."""
        time_span = kwargs.get("time_span") or {}
        params = {k: v for k, v in kwargs.items() if k not in _MSTICPY_OPTIONS}
        if _QUERY_PARAM in params:
            params["query"] = params.pop(_QUERY_PARAM)
        for bound in ("start", "end"):
            if bound not in params and time_span.get(bound) is not None:
                params[bound] = time_span[bound]
        if query.startswith(_MARK):
            family, _, name = query[len(_MARK):].rpartition(".")
            return getattr(getattr(self._secgraph, family), name)(**params)
        return self._secgraph.exec_query(query)

    def query_with_results(self, query: str, **kwargs: Any) -> tuple[pd.DataFrame, Any]:
        """Runs a query; returns the DataFrame and a status."""
        return self.query(query, **kwargs), "Success"


def _rename_query_parameter() -> None:
    """Makes ``qp.Hunting.run(query="…")`` work through msticpy: for this provider only, a ``query=`` keyword of a
    query call is renamed before msticpy would pass it to ``exec_query`` beside its own ``query`` argument."""
    from msticpy.data.core import data_providers

    original = data_providers.QueryProvider._execute_query
    if getattr(original, "_secgraph", False):
        return

    def _execute_query(self, *args: Any, **kwargs: Any) -> Any:
        if isinstance(getattr(self, "_query_provider", None), SecGraphDriver) and "query" in kwargs:
            kwargs[_QUERY_PARAM] = kwargs.pop("query")
        return original(self, *args, **kwargs)

    _execute_query._secgraph = True  # type: ignore[attr-defined]
    data_providers.QueryProvider._execute_query = _execute_query


_rename_query_parameter()

