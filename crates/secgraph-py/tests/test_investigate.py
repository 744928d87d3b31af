"""From an alert to threat intelligence, the audit log and containment, as DataFrames: TI families, enrich="ti"
across tenants (and a tenant without TI access), AuditLog.search, Identity health and response actions."""

from __future__ import annotations

import csv
import logging

import pandas as pd

from secgraph import QueryProvider
from secgraph.emulator import Emulator


def _tenants(emu):
    with open(emu.tenants_path, newline="") as f:
        return [row["tenant"] for row in csv.DictReader(f)]


def test_ti_families_and_enrichment_across_tenants(caplog):
    with Emulator(alerts=20, tenants=3, alerts_per_tenant=30) as emu:
        ids = _tenants(emu)
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        rep = qp.ThreatIntel.host_reputation(host="update-check.example-c2.net")
        assert rep.loc[0, "classification"] == "malicious" and pd.api.types.is_integer_dtype(rep["score"])
        articles = qp.ThreatIntel.articles(search="203.0.113.77")
        assert list(articles["title"]) == ["Commodity loader beaconing over HTTPS"]
        assert isinstance(articles["createdDateTime"].dtype, pd.DatetimeTZDtype)

        one = qp.Alerts.list(start="-31d", enrich="ti")
        assert {"ti.verdict", "ti.indicators", "ti.articles", "ti.status"} <= set(one.columns)
        assert (one["ti.verdict"] == "malicious").any()

        qp.connect(config=emu.config_path, instance="MSSP", tenant_ids=[ids[0], ids[2]])
        both = qp.Alerts.list(start="-31d", enrich="ti")
        assert len(both) == 60 and set(both["ti.status"]) == {"ok"}

        qp.connect(config=emu.config_path, instance="MSSP", tenant_ids=[ids[1]])
        with caplog.at_level(logging.WARNING):
            unlicensed = qp.Alerts.list(start="-31d", enrich="ti")
        assert len(unlicensed) == 30, "every alert, enrichment or not"
        assert unlicensed["ti.status"].str.contains("no Threat Intelligence access").any()
        assert any("no Threat Intelligence access" in r.getMessage() for r in caplog.records)


def test_audit_search_and_identity_actions():
    with Emulator(alerts=30) as emu:
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        records = qp.AuditLog.search(start="-40d", operations=["New-InboxRule", "Consent to application."])
        assert set(records["operation"]) == {"New-InboxRule", "Consent to application."}
        assert isinstance(records["createdDateTime"].dtype, pd.DatetimeTZDtype)

        issues = qp.Identity.health_issues(status="open")
        assert len(issues) == 3 and set(issues["status"]) == {"open"}
        sensors = qp.Identity.sensors()
        assert pd.api.types.is_integer_dtype(sensors["openHealthIssuesCount"])

        accounts = qp.Identity.accounts()
        name = accounts.loc[0, "displayName"]
        plan = qp.identity_action(name, "disable")
        assert plan["sent"] is False and "invokeAction" in plan["plan"]["request"]
        assert qp.Identity.accounts().loc[0, "isEnabled"], "a dry run changes nothing"
        done = qp.identity_action(name, "disable", yes=True)
        assert done["sent"] and done["reply"]["action"] == "disable"
        assert not qp.Identity.accounts().loc[0, "isEnabled"]
        again = qp.identity_action(name, "disable", yes=True)
        assert again["sent"] is False and again["plan"]["already"] == "the account is already disabled"
