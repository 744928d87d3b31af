"""The export dataset as DuckDB reads it: hive partitions, every version counted once, the compacted current state."""

from __future__ import annotations

import json
import subprocess

import duckdb


def test_duckdb_reads_the_exported_dataset(emu, cli_bin, tmp_path):
    root = tmp_path / "lake"
    summary = tmp_path / "summary.json"
    run = subprocess.run(
        [cli_bin, "--config", emu.config_path, "--instance", "Default,Fabrikam", "export", "--root", str(root),
         "--summary", str(summary)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    reports = json.loads(summary.read_text())
    expected = {}
    for r in reports:
        expected[(r["stream"], r["tenant_id"])] = r["new_versions"]

    con = duckdb.connect()
    for stream in ("alerts_v2", "incidents"):
        rows = con.execute(
            f"""select tenant, count(*), count(distinct (id, lastUpdateDateTime)), min(date), max(date)
                from read_parquet('{root}/stream={stream}/**/*.parquet', hive_partitioning=true)
                group by tenant order by tenant"""
        ).fetchall()
        assert len(rows) == 2, rows
        for tenant, count, distinct, first_day, last_day in rows:
            assert count == distinct == expected[(stream, tenant)] > 0
            assert str(first_day) <= str(last_day)
        described = con.execute(
            f"describe select * from read_parquet('{root}/stream={stream}/**/*.parquet', hive_partitioning=true)"
        ).fetchall()
        types = {r[0]: r[1] for r in described}
        assert types["lastUpdateDateTime"].startswith("TIMESTAMP"), types["lastUpdateDateTime"]

    compact = subprocess.run([cli_bin, "export", "--root", str(root), "--compact"], capture_output=True, text=True, timeout=300)
    assert compact.returncode == 0, compact.stderr
    (n,) = con.execute(
        f"select count(*) from read_parquet('{root}/current/stream=alerts_v2/**/*.parquet', hive_partitioning=true)"
    ).fetchone()
    (ids,) = con.execute(
        f"select count(distinct (tenant, id)) from read_parquet('{root}/stream=alerts_v2/**/*.parquet', hive_partitioning=true)"
    ).fetchone()
    assert n == ids


def _versions(root) -> set:
    con = duckdb.connect()
    out = set()
    for stream in ("alerts_v2", "incidents"):
        rows = con.execute(
            f"""select tenant, id, lastUpdateDateTime
                from read_parquet('{root}/stream={stream}/**/*.parquet', hive_partitioning=true)"""
        ).fetchall()
        assert len(rows) == len(set(rows)), f"{stream}: a version stored twice"
        out |= {(stream, *r) for r in rows}
    return out


def test_python_export_writes_the_same_dataset_as_the_cli(emu, cli_bin, tmp_path):
    import secgraph

    by_cli = tmp_path / "cli"
    run = subprocess.run(
        [cli_bin, "--config", emu.config_path, "--instance", "Default,Fabrikam", "export", "--root", str(by_cli)],
        capture_output=True, text=True, timeout=300,
    )
    assert run.returncode == 0, run.stderr
    by_py = tmp_path / "py"
    summary = secgraph.export(by_py, config=emu.config_path, instances=["Default", "Fabrikam"])
    assert len(summary) == 4 and summary["error"].isna().all(), summary
    assert set(summary["stream"]) == {"alerts_v2", "incidents"}
    assert _versions(by_py) == _versions(by_cli) != set()
    checkpoints = lambda root: sorted(p.relative_to(root).as_posix() for p in (root / "_checkpoints").rglob("*.json"))
    assert checkpoints(by_py) == checkpoints(by_cli) and len(checkpoints(by_py)) == 4
    for rel in checkpoints(by_py):
        a, b = (json.loads((r / rel).read_text()) for r in (by_py, by_cli))
        assert a["runs"] == b["runs"] == 1
        assert a["pending"] == b["pending"] == []
    # A second run finds nothing new.
    again = secgraph.export(by_py, config=emu.config_path, instances=["Default", "Fabrikam"])
    assert (again["new_versions"] == 0).all(), again


def test_a_second_concurrent_export_of_a_tenant_fails_fast_naming_the_lock(emu, cli_bin, tmp_path):
    import os

    import pytest

    import secgraph

    root = tmp_path / "lake"
    env = dict(os.environ, SECGRAPH_EXPORT_PAUSE_AT="page#2")
    first = subprocess.Popen(
        [cli_bin, "--config", emu.config_path, "export", "--stream", "alerts_v2", "--page-size", "20",
         "--root", str(root)],
        stderr=subprocess.PIPE, stdout=subprocess.DEVNULL, text=True, env=env,
    )
    try:
        for line in first.stderr:
            if "paused at page#2" in line:
                break
        else:
            raise AssertionError("the first export ended before pausing")
        before = sorted(p.as_posix() for p in root.rglob("*") if p.is_file())
        with pytest.raises(secgraph.OutputError) as e:
            secgraph.export(root, config=emu.config_path, streams=["alerts_v2"])
        message = str(e.value)
        assert "another export is writing stream alerts_v2 of tenant" in message, message
        assert "_locks/stream=alerts_v2/tenant=" in message and f"process {first.pid}" in message, message
        assert sorted(p.as_posix() for p in root.rglob("*") if p.is_file()) == before
    finally:
        first.kill()
        first.wait()
    summary = secgraph.export(root, config=emu.config_path, streams=["alerts_v2"])
    assert summary["error"].isna().all() and summary["new_versions"].sum() == 300
