"""Fixtures: one emulator per session (in this process, loopback only) and a provider connected to it."""

from __future__ import annotations

import datetime as dt
import os
import pathlib

import pytest

from secgraph import QueryProvider
from secgraph.emulator import DEMO_ANALYST, Emulator

REPO = pathlib.Path(__file__).resolve().parents[3]


@pytest.fixture(scope="session")
def emu():
    # The suite runs msticpy's hunting files and more: far beyond the service's 45 hunting calls a minute.
    with Emulator(alerts=300, page_size=40, auto_approve=DEMO_ANALYST, hunting_calls_per_minute=100_000) as e:
        yield e


@pytest.fixture(scope="session")
def qp(emu):
    p = QueryProvider("SecurityGraph")
    # The suite sends hundreds of requests a minute to a local emulator; Graph's own budgets are kept elsewhere.
    p.connect(config=emu.config_path, requests_per_minute=100_000)
    return p


@pytest.fixture(scope="session")
def window():
    """A fixed time range, so the CLI and the package render the same request."""
    end = dt.datetime.now(dt.timezone.utc).replace(microsecond=0)
    return end - dt.timedelta(days=30), end


@pytest.fixture(scope="session")
def cli_bin() -> str:
    """The secgraph CLI built by `cargo test --workspace` (scripts/test builds it first)."""
    path = os.environ.get("SECGRAPH_BIN") or str(REPO / "target" / "debug" / "secgraph")
    assert pathlib.Path(path).is_file(), f"no CLI binary at {path}: run `cargo build -p secgraph-cli` (scripts/test does)"
    return path
