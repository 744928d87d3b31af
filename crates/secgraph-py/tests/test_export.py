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
