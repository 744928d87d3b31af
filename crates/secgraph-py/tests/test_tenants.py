"""Many tenants from one multi-tenant app: a tenants file read through the ``MSSP`` instance, each tenant's status
as a DataFrame (the same table the CLI writes with ``--summary``), filters, ``strict_tenants`` and the export."""

from __future__ import annotations

import json
import subprocess
import warnings

import pytest

import secgraph
from secgraph import QueryProvider
from secgraph.emulator import Emulator

STATUS_COLUMNS = ["tenant", "name", "instance", "rows", "pages", "retries", "budget_wait_s", "error"]


@pytest.fixture(scope="module")
def mssp():
    with Emulator(alerts=30, tenants=8, alerts_per_tenant=10) as emu:
        yield emu


def test_every_tenant_is_read_and_its_status_is_a_dataframe(mssp, cli_bin, tmp_path):
    qp = QueryProvider("SecurityGraph")
    qp.connect(config=mssp.config_path, instance="MSSP")
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        df = qp.Alerts.list(start="-30d")
    assert any("1 of 8 tenant(s) failed" in str(w.message) for w in caught), [str(w.message) for w in caught]
    assert len(df) == 7 * 10
    assert (df["TenantId"] == df["tenantId"]).all()
    status = df.attrs["secgraph_status"]
    assert list(status.columns) == STATUS_COLUMNS
    assert status is qp.last_status
    assert list(status["name"]) == [f"Customer {i:04}" for i in range(1, 9)]
    failed = status[status["error"].notna()]
    assert list(failed["name"]) == ["Customer 0005"] and "403" in failed["error"].iloc[0]
    assert int(status["rows"].sum()) == len(df)

    # The CLI's --summary is the same table.
    summary = tmp_path / "status.json"
    run = subprocess.run(
        [cli_bin, "--config", mssp.config_path, "--instance", "MSSP", "query", "Alerts.list", "--start", "-30d",
         "-o", "jsonl", "--summary", str(summary)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 8, run.stderr
    cli = json.loads(summary.read_text())
    keep = ["tenant", "name", "instance", "rows", "pages"]
    assert [{k: r[k] for k in keep} for r in cli] == status[keep].to_dict("records")
    assert [r["error"] is not None for r in cli] == list(status["error"].notna())


def test_tags_ids_and_strict_tenants(mssp):
    qp = QueryProvider("SecurityGraph")
    qp.connect(config=mssp.config_path, instance="MSSP", tenants=mssp.tenants_path, tenant_tags="test")
    df = qp.Alerts.list(start="-30d")
    assert sorted(set(df["TenantId"])) == sorted(set(qp.last_status["tenant"]))
    assert list(qp.last_status["name"]) == ["Customer 0004", "Customer 0008"]

    # split_by across tenants: every tenant reads the range as slices, the same rows as one pass.
    sliced = qp.Alerts.list(start="-30d", split_by="4d", parallel=2)
    assert sorted(zip(sliced["TenantId"], sliced["id"])) == sorted(zip(df["TenantId"], df["id"]))

    strict = QueryProvider("SecurityGraph")
    strict.connect(config=mssp.config_path, instance="MSSP", strict_tenants=True)
    with pytest.raises(secgraph.SecGraphError, match="1 of 8 tenant"):
        strict.Alerts.list(start="-30d")

    with pytest.raises(ValueError, match="tenants file"):
        QueryProvider("SecurityGraph").connect(config=mssp.config_path, tenant_tags=["prod"])


def test_export_reads_the_tenants_file(mssp, tmp_path):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        summary = secgraph.export(tmp_path / "lake", config=mssp.config_path, instances=["MSSP"],
                                  streams=["alerts_v2"])
    assert len(summary) == 8
    ok = summary[summary["error"].isna()]
    assert len(ok) == 7 and (ok["new_versions"] == 10).all()
