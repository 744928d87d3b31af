#!/usr/bin/env python3
"""Spark benchmark (docs/PERFORMANCE.md, "Spark"): in one run, against one in-process emulator seeded with N alerts,
  1. Spark's own start-up (SparkSession, local[2]) — reported apart;
  2. `secgraph.export` of alerts_v2 into a fresh Parquet dataset (the engine alone);
  3. `spark.read.format("secgraph")` of the same alerts (batch, 1-day windows, written to Spark's `noop` sink so
     every row and column is produced), Arrow batches from the data source;
  4. the same read through a reader that yields Python rows (what a data source without Arrow would do).
Each timed phase runs after the emulator is ready; no Python start-up is inside a timer.

    PYSPARK_PYTHON=.venv/bin/python .venv/bin/python scripts/bench-spark.py --alerts 200000
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time


def main() -> None:
    ap = argparse.ArgumentParser()
    ap.add_argument("--alerts", type=int, default=200_000)
    ap.add_argument("--skip-rows", action="store_true", help="skip the row-yielding reader (slow)")
    args = ap.parse_args()
    os.environ.setdefault("PYSPARK_PYTHON", sys.executable)

    import secgraph
    import secgraph.spark as sgs
    from secgraph.emulator import Emulator

    t = time.perf_counter()
    # Pages of 1,000 for both readers (the export asks $top=1000; the query template leaves the size to the service).
    emu = Emulator(alerts=args.alerts, alerts_per_tenant=10, page_size=1000)
    print(f"emulator ready with {args.alerts} alerts in {time.perf_counter() - t:.1f} s", flush=True)

    t = time.perf_counter()
    from pyspark.sql import SparkSession

    spark = (SparkSession.builder.master("local[2]").config("spark.ui.enabled", "false")
             .config("spark.sql.session.timeZone", "UTC").getOrCreate())
    spark.sparkContext.setLogLevel("ERROR")
    sgs.register(spark)
    print(f"spark start-up: {time.perf_counter() - t:.1f} s", flush=True)

    budget = "100000"  # the emulator enforces no rate here; Graph's 150 a minute would make both runs wait alike
    with tempfile.TemporaryDirectory() as root:
        t = time.perf_counter()
        summary = secgraph.export(root, config=emu.config_path, streams=["alerts_v2"], requests_per_minute=int(budget))
        export_s = time.perf_counter() - t
        n = int(summary["new_versions"].sum())
        print(f"secgraph export: {n} alerts in {export_s:.1f} s = {n / export_s:,.0f} rows/s", flush=True)

    def read(reader_rows: bool) -> float:
        fmt = "secgraph_rows" if reader_rows else "secgraph"
        t = time.perf_counter()
        (spark.read.format(fmt).option("config", emu.config_path).option("instances", "Default")
         .option("since", "-35d").option("window", "1d").option("requestsPerMinute", budget)
         .load().write.format("noop").mode("overwrite").save())
        return time.perf_counter() - t

    arrow_s = read(False)
    print(f"spark batch (Arrow batches): {n} rows in {arrow_s:.1f} s = {n / arrow_s:,.0f} rows/s "
          f"({export_s / arrow_s:.2f}x the export's rate)", flush=True)

    if not args.skip_rows:
        class RowsReader(sgs._BatchReader):
            def read(self, partition):
                for batch in super().read(partition):
                    cols = [c.to_pylist() for c in batch.columns]
                    yield from zip(*cols)

        class RowsSource(sgs.SecGraphDataSource):
            @classmethod
            def name(cls):
                return "secgraph_rows"

            def reader(self, schema):
                return RowsReader(self._opts, schema)

        spark.dataSource.register(RowsSource)
        rows_s = read(True)
        print(f"spark batch (Python rows):   {n} rows in {rows_s:.1f} s = {n / rows_s:,.0f} rows/s "
              f"(Arrow is {rows_s / arrow_s:.1f}x faster)", flush=True)
    spark.stop()
    emu.stop()


if __name__ == "__main__":
    main()
