"""secgraph: the Microsoft Graph Security API for threat hunters, on a Rust engine.

msticpy's SecurityGraph provider calls, unchanged::

    from secgraph import QueryProvider
    qry_prov = QueryProvider("SecurityGraph")
    qry_prov.connect()
    df = qry_prov.Alerts.list(start="-7d", severity="high")

Results are pandas DataFrames (pyarrow Tables or polars DataFrames with ``output=``); big pulls stream with
``qry_prov.Alerts.list.batches(...)``. ``secgraph.emulator.Emulator`` runs a local Entra ID + Graph + Key Vault for
tests and demos; ``secgraph.export(root, all_instances=True)`` keeps a Parquet dataset of every alert and incident
version up to date; ``secgraph.msticpy.PLUGIN_FOLDER`` is a msticpy plugin folder that adds the ``SecGraph`` environment.
"""

from ._native import (
    AuthenticationError,
    CancelledError,
    ConfigurationError,
    LocalError,
    OutputError,
    QueryError,
    SecGraphError,
    ServiceError,
    __version__,
)
from ._export import export
from ._provider import DATA_ENVIRONMENTS, AsyncQueryProvider, QueryFamily, QueryFunction, QueryProvider

__all__ = [
    "DATA_ENVIRONMENTS",
    "AsyncQueryProvider",
    "AuthenticationError",
    "CancelledError",
    "ConfigurationError",
    "LocalError",
    "OutputError",
    "QueryError",
    "QueryFamily",
    "QueryFunction",
    "QueryProvider",
    "SecGraphError",
    "ServiceError",
    "__version__",
    "export",
]
