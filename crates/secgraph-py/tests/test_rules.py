"""qp.rules: list, plan and apply detection rules across the tenants of a tenants file, as DataFrames."""

from __future__ import annotations

import csv
import warnings

import pytest

from secgraph import QueryProvider, SecGraphError
from secgraph.emulator import Emulator

RULE = """key: failed-logons
name: Failed logons
period: 1H
query: |
  DeviceLogonEvents
  | where ActionType == "LogonFailed"
  | project Timestamp, ReportId, DeviceId
alert:
  title: Failed logon
  severity: low
  category: CredentialAccess
  impactedAssets:
    - {type: device, identifier: deviceId}
"""


def _tenants(emu):
    with open(emu.tenants_path, newline="") as f:
        return [row["tenant"] for row in csv.DictReader(f)]


def test_plan_apply_list_across_tenants(tmp_path):
    folder = tmp_path / "rules"
    folder.mkdir()
    (folder / "failed-logons.yaml").write_text(RULE)
    (folder / "phish.yaml").write_text(
        RULE.replace("key: failed-logons", "key: local-admin")
        .replace("Failed logons", "Local admin")
        .replace('ActionType == "LogonFailed"', "IsLocalAdmin == true")
    )
    with Emulator(alerts=20, tenants=4, alerts_per_tenant=20) as emu:
        ids = _tenants(emu)
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path, instance="MSSP", tenant_ids=[ids[0], ids[1], ids[3]])

        plan = qp.rules.plan(folder)
        assert list(plan.columns[:3]) == ["TenantId", "Tenant", "Instance"]
        assert len(plan) == 6 and set(plan["action"]) == {"create"}
        assert set(plan["TenantId"]) == {ids[0], ids[1], ids[3]}
        assert qp.rules.list().empty, "a dry run (apply without yes) sends nothing"
        qp.rules.apply(folder)
        assert qp.rules.list().empty

        done = qp.rules.apply(folder, yes=True)
        assert set(done["outcome"]) == {"done"}
        rules = qp.rules.list()
        assert len(rules) == 6 and set(rules["key"]) == {"failed-logons", "local-admin"}
        assert (qp.rules.plan(folder)["action"] == "unchanged").all()

        (folder / "failed-logons.yaml").write_text(RULE.replace("severity: low", "severity: high"))
        plan = qp.rules.plan(folder)
        changed = plan[plan["action"] == "update"]
        assert len(changed) == 3 and set(changed["key"]) == {"failed-logons"}
        assert changed.iloc[0]["fields"] == [{"field": "alert.severity", "remote": "low", "local": "high"}]

        # The read-only tenant (the third customer) fails by name; the others are applied.
        qp.connect(config=emu.config_path, instance="MSSP", tenant_ids=ids[:4])
        with warnings.catch_warnings(record=True) as caught:
            warnings.simplefilter("always")
            done = qp.rules.apply(folder, yes=True)
        assert any("Customer 0003" in str(w.message) and "CustomDetection.ReadWrite.All" in str(w.message) for w in caught)
        status = done.attrs["secgraph_status"]
        assert status.loc[status["tenant"] == ids[2], "error"].iloc[0]
        assert set(done.loc[done["action"] == "update", "outcome"]) == {"done"}


def test_an_invalid_folder_is_refused_before_anything_is_sent(tmp_path):
    (tmp_path / "bad.yaml").write_text(RULE.replace("severity: low", "severity: severe"))
    with Emulator(alerts=10) as emu:
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        with pytest.raises(SecGraphError, match=r"bad.yaml:10: alert.severity: 'severe' is not a severity"):
            qp.rules.plan(tmp_path)
        assert emu.requests_with("/security/rules") == 0
