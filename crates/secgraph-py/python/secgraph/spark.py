"""secgraph on Spark: a PySpark data source (``format("secgraph")``) on the same Rust engine.

    from secgraph.spark import SecGraphDataSource
    spark.dataSource.register(SecGraphDataSource)
    alerts = (spark.read.format("secgraph")
              .option("config", "/dbfs/secgraph/msticpyconfig.yaml")
              .option("instances", "*").option("since", "-30d").option("window", "1d")
              .load())

**Batch** (``spark.read``): the current state of every item of a query over a time range, one row per item, with
``TenantId`` and ``Instance`` in front of the library's declared columns. The driver plans partitions as (tenant,
time windows); at most ``maxConcurrentPerTenant`` partitions of one tenant exist, each read by an executor that signs
in itself from the settings and keeps its share of the tenant's request budget.

**Streaming** (``spark.readStream``, streams ``alerts_v2`` and ``incidents``): every *version* of every item once
(``id`` + ``lastUpdateDateTime``, the export's rule). An offset is a watermark per tenant; a micro-batch reads each
tenant's half-open window ``[start, end)`` of ``lastUpdateDateTime``, where ``end`` is the service's time less the
overlap (``secgraph.export``'s rule, computed by the library). Windows meet without overlapping, so a restarted
batch re-reads the same windows and stores nothing twice.

Secrets never travel: options naming a secret are refused, partitions hold only instance, tenant and times, and
executors read credentials from the settings (Key Vault, certificates, environment) themselves. See docs/SPARK.md.
"""

from __future__ import annotations

import dataclasses
import datetime as dt
import json
import re
from typing import Any, Dict, Iterator, List, Optional, Sequence, Tuple

import pyarrow as pa
from pyspark.sql.datasource import (
    DataSource,
    DataSourceReader,
    DataSourceStreamReader,
    EqualTo,
    GreaterThan,
    GreaterThanOrEqual,
    In,
    InputPartition,
    LessThan,
    LessThanOrEqual,
)
from pyspark.sql.pandas.types import from_arrow_schema, to_arrow_schema
from pyspark.sql.types import StructType

from . import _native

try:  # Spark 4.2+: trigger(availableNow=True) stops at the offset planned when the query starts.
    from pyspark.sql.streaming.datasource import SupportsTriggerAvailableNow
except ImportError:  # pragma: no cover - Spark 4.0/4.1
    class SupportsTriggerAvailableNow:  # type: ignore[no-redef]
        pass

__all__ = ["SecGraphDataSource", "register"]

#: Graph's documented budget for alert and incident reads: requests a minute per app and tenant.
GRAPH_REQUESTS_PER_MINUTE = 150

_STREAM_QUERIES = {"alerts_v2": "Alerts.list", "incidents": "Incidents.list"}
#: The column each query's time range filters (its ``start``/``end`` parameters).
_RANGE_COLUMN = {"alerts_v2": "createdDateTime", "incidents": "createdDateTime"}
#: Options that would put a secret into Spark's plan, logs and checkpoints: refused.
_SECRET_OPTIONS = {"client_secret", "clientsecret", "connection_str", "connectionstring", "password", "secret", "token",
                   "access_token", "refresh_token", "private_key_password", "sas_token"}
_DURATION = re.compile(r"^\s*(\d+)\s*([smhdw])\s*$", re.IGNORECASE)
_UNITS = {"s": 1, "m": 60, "h": 3600, "d": 86400, "w": 604800}


def register(spark: Any) -> None:
    """Registers the data source as ``secgraph`` with filter pushdown on: sets
    ``spark.sql.python.filterPushdown.enabled`` (Spark refuses a reader that pushes filters while it is off) and
    registers the variant whose batch reader sends severity, status, time and tenant filters to Graph."""
    spark.conf.set("spark.sql.python.filterPushdown.enabled", "true")
    spark.dataSource.register(_PushdownDataSource)


def _seconds(text: str, option: str) -> int:
    m = _DURATION.match(text or "")
    if not m:
        raise ValueError(f"secgraph: option {option}={text!r}: expected a duration such as 30m, 6h, 1d or 1w")
    n = int(m.group(1)) * _UNITS[m.group(2).lower()]
    if n <= 0:
        raise ValueError(f"secgraph: option {option}={text!r}: the duration must be positive")
    return n


def _overlap(text: Optional[str]) -> int:
    """The streaming overlap in seconds: ``0``, or a duration; by default the export's 15 minutes."""
    text = (text or "").strip()
    if not text:
        return 15 * 60
    return 0 if text == "0" else _seconds(text, "overlap")


def _time(text: str) -> dt.datetime:
    """A planned time (RFC 3339, UTC, at most microseconds: what the library writes) as a datetime."""
    m = re.fullmatch(r"(\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d)(\.\d{1,6})?(Z|[+-]\d\d:\d\d)?", text.strip())
    if not m:
        raise ValueError(f"secgraph: {text!r} is not a planned time")
    zone = m.group(3) or "Z"
    return dt.datetime.fromisoformat(m.group(1) + (m.group(2) or "") + ("+00:00" if zone == "Z" else zone))


def _stamp(t: dt.datetime) -> str:
    return t.astimezone(dt.timezone.utc).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


@dataclasses.dataclass(frozen=True)
class _Options:
    """The data source's options, checked once on the driver (picklable; no secret can be among them)."""

    config: Optional[str]
    instances: Tuple[str, ...]
    tenants: Optional[str]
    tenant_tags: Tuple[str, ...]
    tenant_ids: Tuple[str, ...]
    stream: str
    params: Tuple[Tuple[str, str], ...]
    since: Optional[str]
    until: Optional[str]
    window_s: int
    max_per_tenant: int
    requests_per_minute: int
    overlap_s: int
    page_size: int
    pushdown: Optional[bool]

    @staticmethod
    def parse(options: Dict[str, str]) -> "_Options":
        o = {str(k).lower(): v for k, v in options.items()}
        secret = sorted(k for k in o if k in _SECRET_OPTIONS or k.removeprefix("param.") in _SECRET_OPTIONS)
        if secret:
            raise ValueError(
                f"secgraph: option {secret[0]} would put a secret into Spark's plan, logs and checkpoints; keep secrets "
                "in the settings (Key Vault references, a certificate, environment variables) that `config` names"
            )
        known = {"config", "instances", "tenants", "tenanttags", "tenantids", "stream", "since", "until", "window",
                 "maxconcurrentpertenant", "requestsperminute", "overlap", "pagesize", "pushfilters", "path"}
        unknown = sorted(k for k in o if k not in known and not k.startswith("param."))
        if unknown:
            raise ValueError(f"secgraph: unknown option {unknown[0]!r} (see docs/SPARK.md for the options)")
        split = lambda v: tuple(s.strip() for s in (v or "").split(",") if s.strip())
        max_per_tenant = int(o.get("maxconcurrentpertenant", "2"))
        if not 1 <= max_per_tenant <= 64:
            raise ValueError(f"secgraph: maxConcurrentPerTenant={max_per_tenant}: expected 1 to 64")
        rpm = int(o.get("requestsperminute", str(GRAPH_REQUESTS_PER_MINUTE)))
        if rpm < 1:
            raise ValueError(f"secgraph: requestsPerMinute={rpm}: expected a positive number")
        return _Options(
            config=o.get("config") or o.get("path"),
            instances=split(o.get("instances")) or ("Default",),
            tenants=o.get("tenants") or None,
            tenant_tags=split(o.get("tenanttags")),
            tenant_ids=split(o.get("tenantids")),
            stream=(o.get("stream") or "alerts_v2").strip(),
            params=tuple(sorted((k[len("param."):], str(v)) for k, v in o.items() if k.startswith("param."))),
            since=o.get("since"),
            until=o.get("until"),
            window_s=_seconds(o.get("window", "1d"), "window"),
            max_per_tenant=max_per_tenant,
            requests_per_minute=rpm,
            overlap_s=_overlap(o.get("overlap")),
            page_size=int(o.get("pagesize", "1000")),
            pushdown=None if "pushfilters" not in o else str(o["pushfilters"]).strip().lower() == "true",
        )

    @property
    def query(self) -> str:
        """The named query a batch read runs."""
        s = self.stream
        if s.startswith("hunting:") or s.startswith("hunting."):
            return s[len("hunting:"):]
        return _STREAM_QUERIES.get(s, s)

    def connect(self) -> Dict[str, Any]:
        """Connect options for one task: its share of the tenant's request budget."""
        return {"requests_per_minute": max(1, self.requests_per_minute // self.max_per_tenant)}

    def targets(self) -> List[Tuple[str, Optional[str], str]]:
        instances = list(self.instances)
        if instances == ["*"]:
            instances = _native.all_instances(self.config)
        return _native.plan_targets(self.config, instances, self.tenants, list(self.tenant_tags), list(self.tenant_ids))


def _arrow_for_spark(schema: pa.Schema) -> pa.Schema:
    """The library's Arrow schema as Spark takes it: dictionary-encoded enums as plain strings, and one column per
    name regardless of case (Spark's names are case-insensitive): the first is kept — so ``TenantId``, the tenant's
    directory id, stands for the entity's own ``tenantId``, which holds the same id."""
    fields = []
    seen = set()
    for f in schema:
        if f.name.lower() in seen:
            continue
        seen.add(f.name.lower())
        t = f.type.value_type if pa.types.is_dictionary(f.type) else f.type
        fields.append(pa.field(f.name, t, nullable=True))
    return pa.schema(fields)


def _spark_schema(schema: pa.Schema) -> StructType:
    return from_arrow_schema(_arrow_for_spark(schema))


def _conform(batch: pa.RecordBatch, schema: pa.Schema) -> pa.RecordBatch:
    """A batch with exactly `schema`'s columns: missing ones null, extra ones (fields an item brought beyond the
    declared columns) left out, types cast to the declared ones."""
    columns = []
    names = batch.schema.names
    for f in schema:
        if f.name in names:
            c = batch.column(names.index(f.name))
            columns.append(c if c.type == f.type else c.cast(f.type))
        else:
            columns.append(pa.nulls(batch.num_rows, f.type))
    return pa.RecordBatch.from_arrays(columns, schema=schema)


def _failed(e: BaseException, part: "_Part") -> BaseException:
    """The error of a partition's read, naming its tenant (and keeping the secgraph exception's class)."""
    who = f"tenant {part.label}" + (f" ({part.tenant})" if part.tenant and part.tenant != part.label else "")
    message = f"secgraph: {who} of instance {part.instance}: {e}"
    try:
        return type(e)(message)
    except Exception:  # pragma: no cover - an exception class that takes other arguments
        return RuntimeError(message)


@dataclasses.dataclass(frozen=True)
class _Part(InputPartition):
    """One task's work: a tenant and its time windows, read one after another (no secret)."""

    instance: str
    tenant: Optional[str]
    label: str
    windows: Tuple[Tuple[Optional[str], str], ...]


def _spread(instance: str, tenant: Optional[str], label: str, windows: Sequence[Tuple[Optional[str], str]],
            k: int) -> List[_Part]:
    """A tenant's windows as at most `k` partitions of consecutive windows: at most `k` of its tasks ever run at
    once, whichever executors take them."""
    if not windows:
        return []
    k = max(1, min(k, len(windows)))
    size = -(-len(windows) // k)
    return [_Part(instance, tenant, label, tuple(windows[i:i + size])) for i in range(0, len(windows), size)]


class SecGraphDataSource(DataSource):
    """``format("secgraph")``: Graph security alerts, incidents and hunting queries as Spark rows (see the module)."""

    @classmethod
    def name(cls) -> str:
        return "secgraph"

    def __init__(self, options: Dict[str, str]) -> None:
        super().__init__(options)
        self._opts = _Options.parse(dict(options))

    def _arrow_schema(self) -> pa.Schema:
        o = self._opts
        if o.stream in _STREAM_QUERIES:
            # Batch (Alerts.list, Incidents.list) and streaming read the same entity: the export's columns.
            return pa.table(_native.stream_schema(o.stream)).schema
        result, language, _ranged = _native.query_schema(o.config, o.query, list(o.params))
        if language == "kql":
            return _BatchReader(o, None).hunting_schema()
        return pa.table(result).schema

    def schema(self) -> StructType:
        return _spark_schema(self._arrow_schema())

    #: Whether the batch reader pushes filters when the `pushFilters` option does not say (Spark refuses a reader that
    #: pushes filters unless `spark.sql.python.filterPushdown.enabled` is set, which :func:`register` does).
    pushdown_by_default = False

    def reader(self, schema: StructType) -> DataSourceReader:
        pushdown = self._opts.pushdown if self._opts.pushdown is not None else self.pushdown_by_default
        return (_PushdownReader if pushdown else _BatchReader)(self._opts, schema)

    def streamReader(self, schema: StructType) -> DataSourceStreamReader:
        return _StreamReader(self._opts, schema)


class _PushdownDataSource(SecGraphDataSource):
    """The data source with filter pushdown on by default (registered by :func:`register`)."""

    pushdown_by_default = True


class _BatchReader(DataSourceReader):
    """Batch: (tenant, time windows) partitions of a named query over ``[since, until]``."""

    def __init__(self, opts: _Options, schema: Optional[StructType]) -> None:
        self.opts = opts
        self.params = dict(opts.params)
        self.since = opts.since
        self.until = opts.until
        self.tenant_ids: Optional[set] = None
        # The columns Spark was given (`schema()`, or the user's own): every batch is shaped to them.
        self.arrow = None if schema is None else to_arrow_schema(schema, timezone="UTC")

    def _range(self) -> Tuple[str, str]:
        now = _stamp(dt.datetime.now(dt.timezone.utc))
        since = self.since or self.params.get("start") or "-7d"
        until = self.until or self.params.get("end") or now
        return since, until

    def _windows(self) -> List[Tuple[Optional[str], str]]:
        since, until = self._range()
        return [tuple(w) for w in _native.time_windows(since, until, self.opts.window_s)]

    def _targets(self) -> List[Tuple[str, Optional[str], str]]:
        targets = self.opts.targets()
        if self.tenant_ids is not None:
            targets = [t for t in targets if (t[1] or "").lower() in self.tenant_ids]
        return targets

    def partitions(self) -> Sequence[InputPartition]:
        _, _, ranged = _native.query_schema(self.opts.config, self.opts.query, list(self.opts.params))
        windows = self._windows() if ranged else [(None, "")]
        parts: List[_Part] = []
        for instance, tenant, label in self._targets():
            parts += _spread(instance, tenant, label, windows, self.opts.max_per_tenant)
        return parts or [_Part("", None, "", ())]

    def _read_window(self, part: _Part, window: Tuple[Optional[str], str]):
        o = self.opts
        if window[0] is None:  # a query without a time range: as it is
            params, split = list(self.params.items()), None
        else:  # one slice [start, end]: the window's own bounds replace the query's
            params = [(k, v) for k, v in self.params.items() if k not in ("start", "end")]
            split = (window[0], window[1], 10 ** 9, 1)
        result, status = _native.Provider.run_targets(
            o.config, o.connect(), [part.instance], o.query, params, o.tenants, [],
            [part.tenant] if part.tenant else [], None, None, split,
        )
        for _tenant, _name, _instance, _rows, _pages, _retries, _wait, error in status:
            if error:
                raise _native.ServiceError(error)
        return result

    def hunting_schema(self) -> pa.Schema:
        """A hunting query's columns: the reply declares them, so the driver reads the first window of the first
        tenant once."""
        targets = self._targets()
        if not targets:
            return pa.schema([("TenantId", pa.string()), ("Instance", pa.string())])
        instance, tenant, label = targets[0]
        part = _Part(instance, tenant, label, ())
        windows = self._windows()
        try:
            result = self._read_window(part, windows[-1])
        except Exception as e:
            raise _failed(e, part) from e
        return pa.table(result).schema

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        part: _Part = partition  # type: ignore[assignment]
        if not part.instance:
            return
        for window in part.windows:
            try:
                result = self._read_window(part, window)
            except Exception as e:
                raise _failed(e, part) from e
            for batch in pa.table(result).to_batches():
                if batch.num_rows:
                    yield _conform(batch, self.arrow)


class _PushdownReader(_BatchReader):
    """Batch with filters sent to Graph: ``severity`` and ``status`` (equal or in) become the query's parameters;
    bounds on the query's time column narrow ``[since, until]``; ``TenantId`` (equal or in) narrows the tenants.
    Bounds and tenants are also left for Spark to check, so a row Spark would drop never survives."""

    def pushFilters(self, filters: List[Any]) -> Iterator[Any]:
        time_col = _RANGE_COLUMN.get(self.opts.stream, "Timestamp" if self.opts.query != self.opts.stream else None)
        for f in filters:
            col = f.attribute[0] if len(getattr(f, "attribute", ())) == 1 else None
            # Spark's column names are case-insensitive: `tenantid` is `TenantId`.
            col = {"severity": "severity", "status": "status", "tenantid": "TenantId"}.get(str(col).lower(), col)
            if col in ("severity", "status") and col not in self.params and isinstance(f, (EqualTo, In)):
                values = [f.value] if isinstance(f, EqualTo) else list(f.value)
                if all(isinstance(v, str) and re.fullmatch(r"[A-Za-z]+", v) for v in values) and values:
                    self.params[col] = ",".join(values)
                    continue
            elif col == "TenantId" and isinstance(f, (EqualTo, In)):
                values = [f.value] if isinstance(f, EqualTo) else list(f.value)
                ids = {str(v).lower() for v in values}
                self.tenant_ids = ids if self.tenant_ids is None else self.tenant_ids & ids
            elif col is not None and col == time_col and isinstance(f, (GreaterThan, GreaterThanOrEqual, LessThan, LessThanOrEqual)):
                value = f.value
                if isinstance(value, dt.datetime):
                    t = _stamp(value if value.tzinfo else value.replace(tzinfo=dt.timezone.utc))
                    since, until = self._range()
                    if isinstance(f, (GreaterThan, GreaterThanOrEqual)):
                        self.since = max(since, t) if since[:1].isdigit() else t
                    else:
                        self.until = min(until, t) if until[:1].isdigit() else t
            yield f


class _StreamReader(DataSourceStreamReader, SupportsTriggerAvailableNow):
    """Streaming: every version once, by per-tenant watermarks (see the module)."""

    def __init__(self, opts: _Options, schema: StructType) -> None:
        if opts.stream not in _STREAM_QUERIES:
            raise ValueError(
                f"secgraph: stream {opts.stream!r} cannot be read as a stream: streaming reads versions of alerts_v2 or "
                "incidents (a batch read runs any query)"
            )
        self.opts = opts
        self.arrow = to_arrow_schema(schema, timezone="UTC")
        self._available_now: Optional[dict] = None
        self._last: Optional[dict] = None
        # `since` resolved once (a relative `-30d` would move), to the microsecond as every watermark is.
        self._since = _native.window_end(None, opts.since, 0) if opts.since else ""

    @staticmethod
    def _key(instance: str, tenant: Optional[str]) -> str:
        return f"{instance}|{tenant or ''}"

    def _start_of(self) -> str:
        return self._since

    def initialOffset(self) -> dict:
        start = self._start_of()
        return {"v": 1, "tenants": {self._key(i, t): start for i, t, _ in self.opts.targets()}}

    def _latest(self, start: dict) -> dict:
        o = self.opts
        before = dict(start.get("tenants", {}))
        targets = o.targets()
        # The service's time, once an instance (one small request): every tenant's window ends at it less the overlap.
        service_now: Dict[str, str] = {}
        out = {}
        for instance, tenant, label in targets:
            if instance not in service_now:
                part = _Part(instance, tenant, label, ())
                try:
                    service_now[instance] = _native.service_time(o.config, o.connect(), instance, tenant, o.tenants)
                except Exception as e:
                    raise _failed(e, part) from e
            key = self._key(instance, tenant)
            wm = before.get(key, self._start_of())
            out[key] = _native.window_end(wm or None, service_now[instance], o.overlap_s)
        return {"v": 1, "tenants": out}

    def prepareForTriggerAvailableNow(self) -> None:
        self._available_now = self._latest(self._last or self.initialOffset())

    def latestOffset(self, start: Optional[dict] = None, limit: Any = None) -> dict:
        start = start or self._last or self.initialOffset()
        latest = self._available_now if self._available_now is not None else self._latest(start)
        # A watermark never goes back (stamps of one format order as their times do).
        end = {"v": 1, "tenants": dict(start.get("tenants", {}))}
        for key, stop in latest["tenants"].items():
            end["tenants"][key] = max(stop, end["tenants"].get(key) or "")
        self._last = end
        return end

    def partitions(self, start: dict, end: dict) -> Sequence[InputPartition]:
        parts: List[_Part] = []
        labels = {self._key(i, t): (i, t, name) for i, t, name in self.opts.targets()}
        begin = start.get("tenants", {})
        for key, stop in sorted(end.get("tenants", {}).items()):
            frm = begin.get(key, self._start_of())
            if frm and stop <= frm:
                continue
            instance, _, tenant = key.partition("|")
            instance, tenant, label = labels.get(key, (instance, tenant or None, tenant or instance))
            parts += _spread(instance, tenant, label, self._windows(frm or None, stop), self.opts.max_per_tenant)
        return parts

    def _windows(self, frm: Optional[str], stop: str) -> List[Tuple[Optional[str], str]]:
        """`[frm, stop)` cut into `window`-wide half-open windows (an open start stays one window)."""
        if frm is None:
            return [(None, stop)]
        out = []
        t, end = _time(frm), _time(stop)
        step = dt.timedelta(seconds=self.opts.window_s)
        while t < end:
            nxt = min(t + step, end)
            out.append((_stamp(t), _stamp(nxt)))
            t = nxt
        return out

    def read(self, partition: InputPartition) -> Iterator[pa.RecordBatch]:
        part: _Part = partition  # type: ignore[assignment]
        o = self.opts
        for frm, stop in part.windows:
            try:
                result, _report = _native.read_versions(o.config, o.connect(), part.instance, part.tenant, o.tenants,
                                                        o.stream, frm, stop, o.page_size)
            except Exception as e:
                raise _failed(e, part) from e
            for batch in pa.table(result).to_batches():
                if batch.num_rows:
                    yield _conform(batch, self.arrow)

    def commit(self, end: dict) -> None:
        """Nothing to do: an offset is the whole state (watermarks), and Spark keeps it in its checkpoint."""
