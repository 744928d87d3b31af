"""secgraph on Spark (``secgraph.spark``) in ``local[2]`` against in-process emulators: batch reads equal the CLI's
query, declared types, filters pushed to Graph, streaming versions once across runs and a killed driver, faults
never giving fewer rows with success, and no secret or token anywhere Spark keeps or shows things."""

from __future__ import annotations

import json
import os
import pathlib
import pickle
import re
import signal
import ssl
import subprocess
import sys
import textwrap
import time
import urllib.request

import pytest

pyspark = pytest.importorskip("pyspark")

from pyspark.sql import SparkSession  # noqa: E402
from pyspark.sql import types as T  # noqa: E402

import secgraph.spark as sgspark  # noqa: E402
from secgraph.emulator import DEMO_CLIENT_SECRET, Emulator  # noqa: E402



@pytest.fixture(scope="module")
def spark():
    # Executors run the Python that runs this test (its virtualenv holds pyarrow and secgraph).
    os.environ["PYSPARK_PYTHON"] = sys.executable
    s = (SparkSession.builder.master("local[2]").appName("secgraph-tests")
         .config("spark.ui.enabled", "false").config("spark.sql.shuffle.partitions", "2")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    s.sparkContext.setLogLevel("ERROR")
    sgspark.register(s)
    yield s
    s.stop()


@pytest.fixture(scope="module")
def mssp():
    """Two customer tenants of one multi-tenant app, each with its own data."""
    with Emulator(alerts=40, tenants=2, alerts_per_tenant=60) as emu:
        yield emu


def _secrets(emu) -> list:
    text = pathlib.Path(emu.config_path).read_text()
    found = set(re.findall(r"ClientSecret:\s*['\"]?([^'\"\s]+)", text)) | {DEMO_CLIENT_SECRET}
    return sorted(s for s in found if len(s) >= 8)


def _no_secret_in(text: str, emu, where: str) -> None:
    for s in _secrets(emu):
        assert s not in text, f"a client secret appears in {where}"
    assert not re.search(r"eyJ[A-Za-z0-9_-]{10,}\.[A-Za-z0-9_-]{10,}", text), f"a token appears in {where}"


def _reader(spark, emu, **options):
    r = spark.read.format("secgraph").option("config", emu.config_path).option("instances", "MSSP")
    for k, v in options.items():
        r = r.option(k, v)
    return r


def _fixed_range():
    """The emulator's alerts were created in the last 30 days: 35 days back to now, as fixed times."""
    now = time.time()
    stamp = lambda t: time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(t))
    return stamp(now - 35 * 86400), stamp(now)


def test_batch_equals_the_cli_query_per_tenant_with_declared_types(spark, mssp, cli_bin, tmp_path):
    since, until = _fixed_range()
    df = _reader(spark, mssp, since=since, until=until, window="3d").load()
    got = {(r.TenantId, r.id, r.lastUpdateDateTime.isoformat()[:19]) for r in df.select("TenantId", "id", "lastUpdateDateTime").collect()}
    assert df.count() == len(got) == 2 * 60  # one row per item, both tenants

    out = tmp_path / "cli.jsonl"
    run = subprocess.run(
        [cli_bin, "--config", mssp.config_path, "--instance", "MSSP", "query", "Alerts.list", "--start", since,
         "--end", until, "-o", "jsonl", "--out", str(out)],
        capture_output=True, text=True, timeout=120,
    )
    assert run.returncode == 0, run.stderr
    cli = {(j["TenantId"], j["id"], j["lastUpdateDateTime"][:19]) for j in map(json.loads, out.read_text().splitlines())}
    assert got == cli
    assert len({t for t, _, _ in got}) == 2

    fields = {f.name: f.dataType for f in df.schema.fields}
    assert list(fields)[:3] == ["TenantId", "Instance", "id"]
    assert isinstance(fields["createdDateTime"], T.TimestampType)
    assert isinstance(fields["lastUpdateDateTime"], T.TimestampType)
    assert isinstance(fields["severity"], T.StringType)  # an enum, as text
    assert isinstance(fields["mitreTechniques"], T.ArrayType)
    assert isinstance(fields["evidence"], T.StringType)  # nested objects as JSON text, as in Parquet
    # Spark's names are case-insensitive: the entity's own tenantId is TenantId (the directory id).
    assert "tenantId" not in fields


def test_a_pushed_severity_filter_goes_to_graph_and_returns_what_spark_would(spark, mssp):
    since, until = _fixed_range()
    everything = _reader(spark, mssp, since=since, until=until).load().toPandas()
    before = mssp.requests_with("severity in ('high')")
    pushed = _reader(spark, mssp, since=since, until=until).load().filter("severity = 'high'")
    rows = pushed.select("TenantId", "id").collect()
    assert mssp.requests_with("severity in ('high')") > before, "the filter was not sent to Graph"
    expected = everything[everything["severity"] == "high"]
    assert sorted((r.TenantId, r.id) for r in rows) == sorted(zip(expected["TenantId"], expected["id"]))
    assert len(rows) > 0

    # A tenant filter narrows the tenants read (and Spark checks it too).
    one = everything["TenantId"].iloc[0]
    only = _reader(spark, mssp, since=since, until=until).load().filter(f"TenantId = '{one}'").select("TenantId").distinct().collect()
    assert [r.TenantId for r in only] == [one]


def _churn(emu, new: int, update: int) -> dict:
    ctx = ssl.create_default_context(cafile=emu.ca_path)
    req = urllib.request.Request(emu.base_url + "/_emulator/churn", method="POST",
                                 data=json.dumps({"new": new, "update": update}).encode(),
                                 headers={"Content-Type": "application/json"})
    return json.loads(urllib.request.urlopen(req, context=ctx, timeout=30).read())


def _stream_once(spark, emu, out: pathlib.Path, instances="Default,Fabrikam") -> list:
    q = (spark.readStream.format("secgraph").option("config", emu.config_path).option("instances", instances)
         .option("overlap", "0").load()
         .writeStream.format("parquet").option("path", str(out / "data")).option("checkpointLocation", str(out / "cp"))
         .trigger(availableNow=True).start())
    q.awaitTermination()
    return [p["numInputRows"] for p in q.recentProgress]


def test_streaming_reads_each_version_once_across_runs(spark, tmp_path):
    with Emulator(alerts=80, alerts_per_tenant=30) as emu:
        out = tmp_path / "stream"
        first = _stream_once(spark, emu, out)
        assert sum(first) == 80 + 30
        changed = _churn(emu, new=3, update=5)
        second = _stream_once(spark, emu, out)
        assert sum(second) == 8
        data = spark.read.parquet(str(out / "data"))
        rows = data.select("TenantId", "id", "lastUpdateDateTime").collect()
        assert len(rows) == len(set(rows)) == 80 + 30 + 8, "a version was stored twice or lost"
        newest = data.orderBy("lastUpdateDateTime", ascending=False).limit(8).select("id").collect()
        assert {r.id for r in newest} == set(changed["updated"]) | set(changed["created"])
        # A third run with nothing changed reads nothing.
        assert sum(_stream_once(spark, emu, out)) == 0
        for f in (out / "cp").rglob("*"):
            if f.is_file():
                _no_secret_in(f.read_text(errors="replace"), emu, f"the checkpoint file {f.name}")


DRIVER = textwrap.dedent("""
    import os, sys
    from pyspark.sql import SparkSession
    import secgraph.spark
    config, out = sys.argv[1], sys.argv[2]
    s = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
         .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    secgraph.spark.register(s)
    q = (s.readStream.format("secgraph").option("config", config).option("instances", "MSSP").option("overlap", "0")
         .option("window", "2d").load()
         .writeStream.format("parquet").option("path", out + "/data").option("checkpointLocation", out + "/cp")
         .trigger(availableNow=True).start())
    q.awaitTermination()
    print("done", flush=True)
""")


def _customers(**config) -> list:
    """(tenant id, name) of an emulator's customers: the same for the same seed, so a second emulator's faults can
    name them."""
    with Emulator(**config) as emu:
        rows = pathlib.Path(emu.tenants_path).read_text().splitlines()[1:]
    return [tuple(r.split(",")[:2]) for r in rows]


def _driver(emu, out: pathlib.Path, script: pathlib.Path) -> subprocess.Popen:
    env = dict(os.environ, PYSPARK_PYTHON=sys.executable)
    return subprocess.Popen([sys.executable, str(script), emu.config_path, str(out)], env=env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)


def test_a_driver_killed_mid_batch_restarts_from_its_checkpoint_and_loses_and_repeats_nothing(spark, tmp_path):
    script = tmp_path / "driver.py"
    script.write_text(DRIVER)
    # The second customer's first read hangs (its reply's first byte held for two minutes): the micro-batch is
    # planned and under way when the driver is killed, whatever the machine's speed.
    tenants = _customers(alerts=10, tenants=2, alerts_per_tenant=50)
    hold = f"alerts_v2:slow-first-byte(120000)@first=1@tenant={tenants[1][0]}"
    with Emulator(alerts=10, tenants=2, alerts_per_tenant=50, faults=hold) as emu:
        out = tmp_path / "killed"
        d = _driver(emu, out, script)
        try:
            reads = lambda: emu.requests_with("lastUpdateDateTime lt ")
            deadline = time.monotonic() + 240
            while not ((out / "cp" / "offsets" / "0").exists() and reads() >= 2):
                assert d.poll() is None, d.communicate()[1][-3000:]
                assert time.monotonic() < deadline, "the micro-batch never started"
                time.sleep(0.2)
            assert not (out / "cp" / "commits" / "0").exists()
        finally:
            os.killpg(d.pid, signal.SIGKILL)
            _, killed_log = d.communicate()
        restarted = _driver(emu, out, script)
        log, errors = restarted.communicate(timeout=600)
        assert restarted.returncode == 0 and "done" in log, errors[-3000:]

        clean = tmp_path / "uninterrupted"
        again = _driver(emu, clean, script)
        log2, errors2 = again.communicate(timeout=600)
        assert again.returncode == 0, errors2[-3000:]

        versions = lambda root: sorted(tuple(r) for r in spark.read.parquet(str(root / "data"))
                                       .select("TenantId", "id", "lastUpdateDateTime").collect())
        after_restart, uninterrupted = versions(out), versions(clean)
        assert len(after_restart) == len(set(after_restart)), "a version was stored twice"
        assert after_restart == uninterrupted and len(uninterrupted) == 2 * 50
        for text, where in ((killed_log, "the killed driver's log"), (errors, "the restarted driver's log"),
                            (errors2, "a driver's log")):
            _no_secret_in(text, emu, where)


def test_faults_give_every_row_or_a_failure_naming_the_tenant(spark, tmp_path):
    since, until = _fixed_range()
    with Emulator(alerts=10, tenants=2, alerts_per_tenant=60) as calm:
        expected = _reader(spark, calm, since=since, until=until).load().count()
    # Four single-shot faults spread over the first requests: tasks run concurrently, so faults by a shared count
    # (`every=`) could land on one request's every attempt; four can take at most four of its five attempts.
    flaky = "alerts_v2:429(0.2)@nth=2;alerts_v2:500(0.1)@nth=3;alerts_v2:reset@nth=5;alerts_v2:429(0.2)@nth=8"
    with Emulator(alerts=10, tenants=2, alerts_per_tenant=60, faults=flaky) as emu:
        assert _reader(spark, emu, since=since, until=until, window="5d").load().count() == expected == 120
    broken_id, broken_name = _customers(alerts=10, tenants=2, alerts_per_tenant=60)[1]
    with Emulator(alerts=10, tenants=2, alerts_per_tenant=60, faults=f"alerts_v2:500@tenant={broken_id}") as emu:
        with pytest.raises(Exception) as failed:
            _reader(spark, emu, since=since, until=until).load().count()
        assert broken_name in str(failed.value) or broken_id in str(failed.value)


def test_no_secret_in_plans_partitions_or_options(spark, mssp):
    since, until = _fixed_range()
    df = _reader(spark, mssp, since=since, until=until).load().filter("severity = 'high'")
    plan = df._jdf.queryExecution().toString()
    _no_secret_in(plan, mssp, "the query plan")
    opts = sgspark._Options.parse({"config": mssp.config_path, "instances": "MSSP", "since": since, "until": until})
    parts = sgspark._BatchReader(opts, None).partitions()
    assert len(parts) >= 2
    _no_secret_in(repr(pickle.dumps(parts)), mssp, "the pickled partitions")
    with pytest.raises(ValueError, match="secret"):
        sgspark._Options.parse({"config": mssp.config_path, "client_secret": "x" * 12})


def test_incidents_and_hunting_queries_read_as_tables(spark, tmp_path, cli_bin):
    since, until = _fixed_range()
    with Emulator(alerts=60, alerts_per_tenant=30, hunting_calls_per_minute=100_000) as emu:
        def cli(name, *args):
            out = tmp_path / f"{name}.jsonl"
            run = subprocess.run([cli_bin, "--config", emu.config_path, "--instance", "Default,Fabrikam", "query", name,
                                  "--start", since, "--end", until, *args, "-o", "jsonl", "--out", str(out)],
                                 capture_output=True, text=True, timeout=120)
            assert run.returncode == 0, run.stderr
            return [json.loads(line) for line in out.read_text().splitlines()]

        read = lambda **o: _reader(spark, emu, instances="Default,Fabrikam", since=since, until=until,
                                   requestsPerMinute="100000", **o).load()
        incidents = read(stream="incidents")
        got = sorted((r.TenantId, r.id) for r in incidents.select("TenantId", "id").collect())
        assert got == sorted((j["TenantId"], j["id"]) for j in cli("Incidents.list")) and got
        assert isinstance(incidents.schema["lastUpdateDateTime"].dataType, T.TimestampType)

        hunting = read(stream="hunting:Hunting.process_by_name", **{"param.file_name": "powershell.exe"})
        rows = hunting.select("TenantId", "Timestamp", "DeviceName").collect()
        expected = cli("Hunting.process_by_name", "-p", "file_name=powershell.exe")
        assert len(rows) == len(expected) > 0
        assert isinstance(hunting.schema["Timestamp"].dataType, T.TimestampType)
        assert {r.TenantId for r in rows} == {j["TenantId"] for j in expected}
