"""msticpy's own M365D query files, run unmodified through `--queries` against the emulator: each completes, and its
rows are those the same KQL gives through `Hunting.run`. (msticpy is installed in the test virtualenv.)"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import subprocess

import pytest

msticpy = pytest.importorskip("msticpy")

M365D = pathlib.Path(msticpy.__file__).parent / "data" / "queries" / "m365d"

# A value for each parameter a query requires, drawn from the emulator's seeded data where that matters.
REQUIRED = {
    "account_name": "alex",
    "app_name": "Office",
    "cmd_line": "powershell",
    "file_hash": "0",
    "file_name": "rclone.exe",
    "file_path": "C:\\Users",
    "host_name": "ws-",
    "ip_address": "203.0.113.10",
    "key_name": "Run",
    "mailbox": "alex",
    "message_id": "1",
    "process_identifier": "4",
    "protocol": "443",
    "url": "http",
    "path": "C:\\Users",
}

# Queries msticpy ships that fail against Microsoft 365 Defender itself, and fail the same way here: the emulator is
# faithful to the service, not to the files.
BROKEN_UPSTREAM = {
    # `project-away *1` also takes away SHA1, which the query then filters on.
    "M365D.sha1_alerts": "SHA1",
    # Column names are case-sensitive: the table's column is DeviceId.
    "M365D.list_file_events_for_host": "DeviceID",
}


def run(cli_bin: str, config: str, *args: str) -> subprocess.CompletedProcess:
    return subprocess.run(
        [cli_bin, "--config", config, "--queries", str(M365D), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def queries(cli_bin: str, config: str) -> list[tuple[str, list[str]]]:
    """Every M365D query with its required parameters, from `secgraph queries` (the CLI's own listing)."""
    out = run(cli_bin, config, "queries", "M365D").stdout
    found = []
    for name, params in re.findall(r"│ (M365D\.\w+)\s+┆([^┆]*)┆", out):
        found.append((name, [p.rstrip("*") for p in params.split() if p.endswith("*")]))
    return found


def test_every_m365d_query_runs_and_matches_hunting_run(emu, cli_bin):
    assert M365D.is_dir(), M365D
    config = emu.config_path
    end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    span = ["--start", (end - dt.timedelta(days=7)).isoformat(), "--end", end.isoformat()]
    listed = queries(cli_bin, config)
    assert len(listed) >= 25, f"msticpy's m365d folder lists {len(listed)} queries"
    ran, with_rows = 0, 0
    for name, required in listed:
        params = [a for p in required for a in ("-p", f"{p}={REQUIRED.get(p, 'x')}")]
        printed = run(cli_bin, config, "query", name, *span, *params, "--print")
        assert printed.returncode == 0, f"{name}: {printed.stderr}"
        body = json.loads(printed.stdout.split(" ", 2)[2])
        assert printed.stdout.startswith("POST /security/runHuntingQuery"), f"{name} is routed to advanced hunting"
        got = run(cli_bin, config, "query", name, *span, *params, "-o", "jsonl", "-q")
        direct = run(cli_bin, config, "query", "Hunting.run", *span, "-p", f"query={body['Query']}",
                     "-p", "limit=100000", "-o", "jsonl", "-q")
        if name in BROKEN_UPSTREAM:
            assert got.returncode != 0 and BROKEN_UPSTREAM[name] in got.stderr, f"{name}: {got.stderr}"
            assert direct.returncode != 0, f"{name}: fails through Hunting.run too"
            continue
        assert got.returncode == 0, f"{name}: {got.stderr}"
        assert direct.returncode == 0, f"{name} via Hunting.run: {direct.stderr}"
        rows = [json.loads(line) for line in got.stdout.splitlines()]
        assert rows == [json.loads(line) for line in direct.stdout.splitlines()], f"{name}: rows differ"
        ran += 1
        with_rows += bool(rows)
    assert ran >= len(listed) - len(BROKEN_UPSTREAM)
    # Not a comparison of empty results: the seeded data answers most of them.
    assert with_rows >= 12, f"only {with_rows} of {ran} queries returned rows"
