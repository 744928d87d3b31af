"""msticpy's own M365D (and older MDE) query files, run unmodified through `--queries` against the emulator: each
completes, and its rows are those the same KQL gives through `Hunting.run` — or, for the files that are broken against
Defender itself, fails the same way. (msticpy is installed in the test virtualenv.)"""

from __future__ import annotations

import datetime as dt
import json
import pathlib
import re
import subprocess

import pytest

msticpy = pytest.importorskip("msticpy")

M365D = pathlib.Path(msticpy.__file__).parent / "data" / "queries" / "m365d"
MDE = pathlib.Path(msticpy.__file__).parent / "data" / "queries" / "mde"

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
    "timestamp": (dt.datetime.now(dt.timezone.utc) - dt.timedelta(days=1)).strftime("%Y-%m-%dT%H:%M:%SZ"),
}

# Queries msticpy ships that fail against Microsoft 365 Defender itself, and fail the same way here: the emulator is
# faithful to the service, not to the files.
BROKEN_M365D = {
    # `project-away *1` also takes away SHA1, which the query then filters on.
    "M365D.sha1_alerts": "SHA1",
    # Column names are case-sensitive: the table's column is DeviceId.
    "M365D.list_file_events_for_host": "DeviceID",
}

# The same for msticpy's older `mde` folder.
COMMENT = "Syntax error"  # a `//` comment: YAML folds the query onto one line, so the comment hides the rest of it
BROKEN_MDE = {
    # DeviceAlertEvents was replaced by AlertInfo/AlertEvidence in 2020.
    **{f"MDE.{q}": "DeviceAlertEvents" for q in ("host_alerts", "ip_alerts", "list_alerts", "sha1_alerts", "url_alerts")},
    "MDE.list_file_events_for_host": "DeviceID",
    # A `str` parameter used as a list: `has_any (powershell)` names a column.
    "MDE.process_cmd_line": "powershell",
    **{f"MDEHunting.{q}": COMMENT for q in ("accessibility_persistence", "av_sites", "doc_with_link", "email_link",
                                            "email_smartscreen", "network_scans", "smartscreen_ignored",
                                            "uncommon_powershell")},
}


def run(cli_bin: str, config: str, *args: str, folder: pathlib.Path = M365D) -> subprocess.CompletedProcess:
    return subprocess.run(
        [cli_bin, "--config", config, "--queries", str(folder), *args],
        capture_output=True,
        text=True,
        timeout=120,
    )


def queries(cli_bin: str, config: str, folder: pathlib.Path, families: str) -> list[tuple[str, list[str]]]:
    """Every query of the folder's families with its required parameters, from `secgraph queries` (the CLI's own
    listing)."""
    out = run(cli_bin, config, "queries", folder=folder).stdout
    found = []
    for name, params in re.findall(r"│ ((?:" + families + r")\.\w+)\s+┆([^┆]*)┆", out):
        found.append((name, [p.rstrip("*") for p in params.split() if p.endswith("*")]))
    return found


def check_folder(cli_bin: str, config: str, folder: pathlib.Path, families: str, broken: dict[str, str],
                 least: int, least_with_rows: int) -> None:
    assert folder.is_dir(), folder
    end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    span = ["--start", (end - dt.timedelta(days=7)).isoformat(), "--end", end.isoformat()]
    listed = queries(cli_bin, config, folder, families)
    assert len(listed) >= least, f"msticpy's {folder.name} folder lists {len(listed)} queries"
    ran, with_rows = 0, 0
    for name, required in listed:
        params = [a for p in required for a in ("-p", f"{p}={REQUIRED.get(p, 'x')}")]
        printed = run(cli_bin, config, "query", name, *span, *params, "--print", folder=folder)
        assert printed.returncode == 0, f"{name}: {printed.stderr}"
        body = json.loads(printed.stdout.split(" ", 2)[2])
        assert printed.stdout.startswith("POST /security/runHuntingQuery"), f"{name} is routed to advanced hunting"
        got = run(cli_bin, config, "query", name, *span, *params, "-o", "jsonl", "-q", folder=folder)
        direct = run(cli_bin, config, "query", "Hunting.run", *span, "-p", f"query={body['Query']}",
                     "-p", "limit=100000", "-o", "jsonl", "-q", folder=folder)
        if name in broken:
            assert got.returncode != 0 and broken[name] in got.stderr, f"{name}: {got.stderr}"
            assert direct.returncode != 0, f"{name}: fails through Hunting.run too"
            continue
        assert got.returncode == 0, f"{name}: {got.stderr}"
        assert direct.returncode == 0, f"{name} via Hunting.run: {direct.stderr}"
        rows = [json.loads(line) for line in got.stdout.splitlines()]
        assert rows == [json.loads(line) for line in direct.stdout.splitlines()], f"{name}: rows differ"
        ran += 1
        with_rows += bool(rows)
    assert ran >= len(listed) - len(broken)
    # Not a comparison of empty results: the seeded data answers most of them.
    assert with_rows >= least_with_rows, f"only {with_rows} of {ran} queries returned rows"


def test_every_m365d_query_runs_and_matches_hunting_run(emu, cli_bin):
    check_folder(cli_bin, emu.config_path, M365D, "M365D", BROKEN_M365D, least=25, least_with_rows=12)


def test_every_mde_query_runs_or_fails_as_in_defender(emu, cli_bin):
    check_folder(cli_bin, emu.config_path, MDE, r"MDE\w*|MDATP\w*", BROKEN_MDE, least=40, least_with_rows=10)
