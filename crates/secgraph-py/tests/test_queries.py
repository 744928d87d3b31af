"""Queries as DataFrames: the same rows as the CLI, typed columns, msticpy's conventions, streaming, async, updates."""

from __future__ import annotations

import asyncio
import datetime as dt
import json
import subprocess
import warnings

import pandas as pd
import pyarrow as pa
import pytest

import secgraph


def _samples(qp) -> dict:
    """Parameter values taken from the emulator's own data, so that queries find something."""
    alert = qp.exec_query("/security/alerts_v2?$top=50").iloc[0]
    evidence = json.loads(alert["evidence"] or "[]")
    flat = json.dumps(evidence)

    def first(key: str, default: str) -> str:
        for ev in evidence:
            stack = [ev]
            while stack:
                item = stack.pop()
                if isinstance(item, dict):
                    if isinstance(item.get(key), str):
                        return item[key]
                    stack.extend(item.values())
                elif isinstance(item, list):
                    stack.extend(item)
        return default

    incident = qp.exec_query("/security/incidents?$top=50").iloc[0]
    legacy = qp.exec_query("/security/alerts?$top=50").iloc[0]
    host = first("deviceDnsName", "host1")
    assert flat  # the first alert has evidence
    return {
        "alert_id": alert["id"],
        "incident_id": incident["id"],
        "host_name": host.split(".")[0],
        "ip_address": first("ipAddress", "10.0.0.1"),
        "user": first("accountName", "user"),
        "account_name": first("accountName", "user"),
        "upn": first("userPrincipalName", "user@contoso.com"),
        "user_principal_name": first("userPrincipalName", "user@contoso.com"),
        "file_name": first("fileName", "a.exe"),
        "file_hash": first("sha256", "0" * 64),
        "file_path": first("filePath", "C:\\Windows"),
        "value": host,
        "domain": "contoso",
        "command_line": "powershell",
        "query": "AlertInfo | take 7",
        "legacy_alert_id": legacy["id"],
        # Threat intelligence knows the hosts and addresses the seeded evidence names (docs/EMULATOR.md).
        "host": "update-check.example-c2.net",
        "article_id": "b2c3d4e5",
        "cve": "CVE-2024-21762",
    }


def _cli_rows(cli_bin, emu, name, params, start, end) -> list[dict]:
    args = [cli_bin, "--config", emu.config_path, "query", name, "-o", "jsonl"]
    if start is not None:
        args += ["--start", start, "--end", end]
    for k, v in params:
        args += ["-p", f"{k}={v}"]
    out = subprocess.run(args, capture_output=True, text=True, timeout=120)
    assert out.returncode == 0, out.stderr
    return [json.loads(line) for line in out.stdout.splitlines() if line.strip()]


def test_every_builtin_query_gives_the_clis_rows(qp, emu, window, cli_bin):
    samples = _samples(qp)
    start, end = (t.strftime("%Y-%m-%dT%H:%M:%SZ") for t in window)
    checked = 0
    for full in qp.list_queries():
        family, name = full.split(".")
        fn = getattr(getattr(qp, family), name)
        spec = fn._spec
        names = {p["name"] for p in spec["parameters"]}
        params = []
        for p in spec["parameters"]:
            if p["required"] and p["name"] not in ("start", "end", "path"):
                key = "legacy_alert_id" if (p["name"] == "alert_id" and family == "SecurityGraphAlert") else p["name"]
                params.append((p["name"], samples[key]))
        timed = "start" in names
        kwargs = dict(params)
        if timed:
            kwargs.update(start=window[0], end=window[1])
        try:
            df = fn(**kwargs)
        except secgraph.QueryError as e:
            # "give at least one of: a, b": a query that needs one of a group of parameters.
            assert "give at least one of: " in str(e), str(e)
            first = str(e).rsplit("give at least one of: ", 1)[1].split(",")[0].strip()
            params.append((first, samples[first]))
            kwargs[first] = samples[first]
            df = fn(**kwargs)
        assert isinstance(df, pd.DataFrame), full
        rows = _cli_rows(cli_bin, emu, full, params, start if timed else None, end)
        assert len(df) == len(rows), full
        if rows and "id" in df.columns and all("id" in r for r in rows):
            assert list(df["id"]) == [r["id"] for r in rows], full
        checked += 1
    assert checked == len(qp.list_queries()) >= 25


def test_datetime_columns_are_utc(qp, window):
    df = qp.Alerts.list(start=window[0], end=window[1])
    assert len(df) > 0
    for col in ("createdDateTime", "lastUpdateDateTime"):
        assert isinstance(df[col].dtype, pd.DatetimeTZDtype) and str(df[col].dt.tz) == "UTC", col
    h = qp.Hunting.run(query="AlertInfo | take 3", start="-30d")
    assert str(h["Timestamp"].dt.tz) == "UTC"


def test_parameters_accept_datetimes_dates_timestamps_strings_and_lists(qp, window):
    a = qp.Alerts.list(start=window[0], end=window[1])
    b = qp.Alerts.list(start=pd.Timestamp(window[0]), end=pd.Timestamp(window[1]))
    c = qp.Alerts.list(start=window[0].replace(tzinfo=None), end=window[1].replace(tzinfo=None))
    assert list(a["id"]) == list(b["id"]) == list(c["id"])
    d = qp.Alerts.list(start=(window[1] - dt.timedelta(days=40)).date(), end=window[1])
    assert len(d) >= len(a)
    e = qp.Alerts.list(start="-30d", severity=["high", "medium"])
    assert set(e["severity"].astype(str)) <= {"high", "medium"} and len(e) > 0


def test_print_and_help_conventions(qp, capsys):
    text = qp.Alerts.list("print", start="-7d", severity="high")
    assert text.startswith("GET /security/alerts_v2?") and "severity in ('high')" in text
    assert qp.Alerts.list("help") is None
    out = capsys.readouterr().out
    assert "severity" in out and "Parameters" in out
    assert "severity" in qp.Alerts.list.__doc__


def test_list_queries_filter_and_help(qp, capsys):
    names = qp.list_queries()
    assert "Alerts.list" in names and "Incidents.list" in names and "SecurityGraphAlert.list_alerts" in names
    assert all("alert" in n.lower() for n in qp.list_queries("Alerts"))
    qp.query_help("Incidents.list")
    assert "Incidents.list" in capsys.readouterr().out
    assert "list" in dir(qp.Alerts) and "Alerts" in dir(qp)
    # msticpy's address for the legacy queries, through the data environment's name.
    assert qp.SecurityGraph.list_alerts is qp.SecurityGraphAlert.list_alerts


def test_unknown_parameter_warns_or_raises_when_strict(qp):
    with pytest.warns(UserWarning, match="no parameter bogus"):
        qp.Alerts.list(start="-1d", bogus=1)
    with pytest.raises(TypeError, match="bogus"):
        qp.Alerts.list(start="-1d", bogus=1, strict=True)


def test_bad_parameter_value_is_a_query_error(qp):
    with pytest.raises(secgraph.QueryError, match="start"):
        qp.Alerts.list(start="yesterday-ish")


def test_empty_result_has_the_querys_columns(qp):
    df = qp.Incidents.list(start="-30d", assigned_to="nobody@example.invalid")
    assert len(df) == 0
    assert {"id", "displayName", "status", "severity", "createdDateTime"} <= set(df.columns)
    assert str(df["createdDateTime"].dtype) == "datetime64[us, UTC]"


def test_arrow_output_and_streaming_batches(qp):
    table = qp.Alerts.list(start="-30d", output="arrow")
    assert isinstance(table, pa.Table)
    assert table.schema.field("createdDateTime").type == pa.timestamp("us", tz="UTC")
    batches = list(qp.Alerts.list.batches(start="-30d"))
    assert len(batches) > 1 and all(isinstance(b, pa.RecordBatch) for b in batches)
    assert sum(b.num_rows for b in batches) == table.num_rows
    with pytest.raises(ValueError):
        qp.Alerts.list(start="-30d", output="excel")


def test_exec_query_pages_through_everything(qp):
    df = qp.exec_query("/security/alerts_v2?$top=50", all=True)
    assert len(df) == 300 and df["id"].is_unique
    assert len(qp.exec_query("/security/alerts_v2")) == 300


def test_a_top_written_by_a_person_is_that_many_rows_in_one_request(emu, qp):
    before = emu.requests_to("/security/alerts_v2")
    df = qp.exec_query("/security/alerts_v2?$top=5")
    assert len(df) == 5
    assert emu.requests_to("/security/alerts_v2") - before == 1


def test_async_variants(emu, qp):
    async def main():
        df = await qp.Alerts.list.aio(start="-30d")
        ex = await qp.exec_query_aio("/security/incidents")
        return df, ex

    df, ex = asyncio.run(main())
    assert len(df) > 0 and len(ex) > 0

    async def connect_async():
        p = secgraph.AsyncQueryProvider("SecurityGraph")
        await p.connect(config=emu.config_path)
        return await p.Alerts.list.aio(start="-30d")

    assert len(asyncio.run(connect_async())) == len(df)


def test_updates(qp):
    alert_id = qp.exec_query("/security/alerts_v2?$top=50").iloc[0]["id"]
    after = qp.update_alert(alert_id, status="inProgress", classification="truePositive", determination="malware", comment="seen")
    assert after["status"] == "inProgress" and after["classification"] == "truePositive"
    assert any(c["comment"] == "seen" for c in after["comments"])
    incident_id = qp.exec_query("/security/incidents?$top=50").iloc[0]["id"]
    inc = qp.update_incident(incident_id, status="active", assigned_to="analyst@contoso-demo.onmicrosoft.com")
    assert inc["assignedTo"] == "analyst@contoso-demo.onmicrosoft.com"
    with pytest.raises(secgraph.QueryError):
        qp.update_alert(alert_id, status="no-such-status")
    with pytest.raises(TypeError):
        qp.update_alert(alert_id, colour="red")


def test_no_unexpected_warnings_on_a_plain_query(qp):
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        qp.Alerts.list(start="-7d")


def test_split_by_equals_the_unsplit_result(qp, window):
    whole = qp.Alerts.list(start=window[0], end=window[1])
    split = qp.Alerts.list(start=window[0], end=window[1], split_by="3d", parallel=3)
    assert sorted(split["id"]) == sorted(whole["id"]) and split["id"].is_unique
    with pytest.raises(ValueError):
        qp.Alerts.list(start="-1d", split_by="soon")


def test_instances_tag_rows_and_report_failures(qp):
    df = qp.Alerts.list(start="-30d", instances=["Default", "Fabrikam"])
    assert set(df["Instance"]) == {"Default", "Fabrikam"}
    assert df.groupby("Instance")["TenantId"].nunique().eq(1).all()
    alone = qp.Alerts.list(start="-30d")
    assert (df["Instance"] == "Default").sum() == len(alone)
    with pytest.warns(UserWarning, match="partial result: NoRoles"):
        partial = qp.Alerts.list(start="-30d", instances=["Default", "NoRoles"])
    assert set(partial["Instance"]) == {"Default"} and "NoRoles" in partial.attrs["failed_instances"]
    with pytest.raises(secgraph.SecGraphError, match="every instance failed"):
        qp.Alerts.list(start="-30d", instances=["NoRoles"])


def test_a_misspelled_parameter_is_an_error_naming_the_intended_one(qp):
    with pytest.raises(ValueError, match="did you mean 'severity'"):
        qp.Alerts.list(start="-1d", sevrity="high")


def test_a_budget_wait_is_in_pythons_log(emu, caplog):
    import logging

    p = secgraph.QueryProvider("SecurityGraph")
    # 40 a minute: a burst of 40 requests, then one every 1.5 s; 300 alerts in pages of 7 need 43 pages.
    p.connect(config=emu.config_path, requests_per_minute=40)
    with caplog.at_level(logging.INFO, logger="secgraph"):
        df = p.exec_query("/security/alerts_v2?$top=7", all=True)
    assert len(df) == 300
    waits = [r for r in caplog.records if r.name.startswith("secgraph") and "request budget" in r.getMessage()]
    assert waits, [r.getMessage() for r in caplog.records][-5:]
