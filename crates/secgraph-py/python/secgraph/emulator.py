"""The secgraph emulator (Entra ID, Graph security, Key Vault over HTTPS on loopback) in this process.

    from secgraph import QueryProvider
    from secgraph.emulator import Emulator

    with Emulator(alerts=500) as emu:
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        df = qp.Alerts.list(start="-30d")
"""

from __future__ import annotations

from typing import Optional

from . import _native

#: The emulator's demo tenant, app and user (for keyword and connection-string connects in tests and demos).
DEMO_TENANT_ID: str = _native.DEMO_TENANT_ID
DEMO_CLIENT_ID: str = _native.DEMO_CLIENT_ID
DEMO_CLIENT_SECRET: str = _native.DEMO_CLIENT_SECRET
DEMO_ANALYST: str = _native.DEMO_ANALYST


class Emulator:
    """Starts on an ephemeral loopback port with its own CA; ``config_path`` is a msticpyconfig.yaml pointing at it.

    ``alerts``: how many alerts to seed (deterministic for ``seed``); ``faults``: a fault spec such as
    ``"alerts_v2:429@every=3"`` (see docs/EMULATOR.md); ``page_size``: items per page when a request has no $top;
    ``auto_approve``: a user every device-code or browser sign-in completes as (e.g. ``DEMO_ANALYST``);
    ``hunting_calls_per_minute``: advanced hunting's per-tenant call quota (default the service's, 45);
    ``next_links`` (``"always"``, ``"never"``, ``"when-filtered"``), ``max_skip``, ``max_top``: how the service
    pages, as the CLI's ``secgraph emulator`` flags of the same names; ``ingestion_lag`` (``"15m"``): a changed
    alert or incident becomes visible only that long after its ``lastUpdateDateTime``, by the emulator's clock.
    ``tenants``: customer tenants of an MSSP, each with its own data (``alerts_per_tenant`` alerts), read by the
    instance ``MSSP`` of ``config_path`` through the tenants file ``tenants_path``; ``requests_per_minute``: the
    rate the emulator enforces per app and tenant (Graph's is 150; default: none).
    """

    def __init__(self, alerts: int = 500, seed: Optional[int] = None, faults: Optional[str] = None,
                 page_size: Optional[int] = None, auto_approve: Optional[str] = None,
                 hunting_calls_per_minute: Optional[int] = None, next_links: Optional[str] = None,
                 max_skip: Optional[int] = None, max_top: Optional[int] = None,
                 ingestion_lag: Optional[str] = None, tenants: int = 0, alerts_per_tenant: Optional[int] = None,
                 requests_per_minute: Optional[int] = None):
        self._inner = _native.Emulator(alerts, seed, faults, page_size, auto_approve, hunting_calls_per_minute,
                                       next_links, max_skip, max_top, ingestion_lag, tenants, alerts_per_tenant,
                                       requests_per_minute)

    def advance_clock(self, by: str) -> str:
        """Moves the emulator's clock forward (``"20m"``, ``"2h"``): changes, writes and tokens are stamped by it, and
        ``ingestion_lag`` counts on it. Returns the emulator's new time."""
        return self._inner.advance_clock(by)

    @property
    def config_path(self) -> str:
        return self._inner.config_path

    @property
    def tenants_path(self) -> Optional[str]:
        """The customers' tenants file (CSV: tenant, name, tags), when ``tenants`` > 0."""
        return self._inner.tenants_path

    @property
    def base_url(self) -> str:
        return self._inner.base_url

    @property
    def ca_path(self) -> str:
        return self._inner.ca_path

    def requests_to(self, suffix: str) -> int:
        """How many requests were served whose path ends with ``suffix``."""
        return self._inner.requests_to(suffix)

    def requests_with(self, text: str) -> int:
        """How many of the latest requests (20,000 kept) had a path and decoded query holding ``text``, e.g.
        ``"severity in ('high')"``: what a client asked the service to filter."""
        return self._inner.requests_with(text)

    def set_alert(self, alert_id: str, fields: dict, tenant: Optional[str] = None) -> bool:
        """Sets properties of an alert as a data source could have written them — e.g. a ``title`` carrying an
        attacker's text, to test what a downstream tool does with it. ``tenant``: a tenant id (default: the first).
        Returns False when there is no such alert."""
        import json

        return self._inner.set_alert(alert_id, json.dumps(fields), tenant)

    def stop(self) -> None:
        self._inner.stop()

    def __enter__(self) -> "Emulator":
        return self

    def __exit__(self, *exc: object) -> None:
        self.stop()
