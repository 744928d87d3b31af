"""msticpy's query-provider API on secgraph's engine.

``QueryProvider("SecurityGraph")``, ``connect(...)``, query families as attributes, each query a callable returning a
pandas DataFrame (or a pyarrow Table / polars DataFrame with ``output=``), msticpy's ``"print"`` and ``"help"``
conventions, update calls, and asyncio variants.
"""

from __future__ import annotations

import asyncio
import datetime as _dt
import functools
import json
import os
import sys
import uuid
import warnings
from typing import Any, Callable, Iterator

from . import _native

#: Data environment names accepted by :class:`QueryProvider` (msticpy's, compared case-insensitively).
DATA_ENVIRONMENTS = ("SecurityGraph", "MicrosoftGraph")

#: Keyword arguments a query call takes for itself (not query parameters).
_CALL_OPTIONS = ("output", "strict", "instances", "split_by", "parallel", "strict_tenants", "enrich")

_UNITS = {"w": 604800, "d": 86400, "h": 3600, "m": 60, "s": 1}


def _seconds(split_by: Any) -> int:
    """``"1d"``, ``"6h"``, ``"30m"``, a ``timedelta`` or a number of seconds, as whole seconds."""
    if isinstance(split_by, _dt.timedelta):
        n = int(split_by.total_seconds())
    elif isinstance(split_by, (int, float)):
        n = int(split_by)
    else:
        text = str(split_by).strip()
        unit = text[-1:]
        if unit not in _UNITS or not text[:-1].isdigit():
            raise ValueError(f"split_by={split_by!r}: expected a number and a unit (w, d, h, m, s), e.g. '1d'")
        n = int(text[:-1]) * _UNITS[unit]
    if n <= 0:
        raise ValueError(f"split_by={split_by!r} must be positive")
    return n

_OUTPUTS = ("pandas", "arrow", "polars")


def _param_text(value: Any) -> str:
    """A parameter value as the text secgraph's templates take.

    datetime/pandas.Timestamp → ISO 8601 in UTC (naive values are taken as UTC, as msticpy does); date → YYYY-MM-DD;
    lists, tuples and sets → comma-separated; booleans → true/false; anything else → str().
    """
    if isinstance(value, _dt.datetime):
        if value.tzinfo is None:
            value = value.replace(tzinfo=_dt.timezone.utc)
        value = value.astimezone(_dt.timezone.utc)
        return value.strftime("%Y-%m-%dT%H:%M:%S.%fZ")
    if isinstance(value, _dt.date):
        return value.isoformat()
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, (list, tuple, set, frozenset)):
        return ",".join(_param_text(v) for v in value)
    return str(value)


def _default_prompt(kind: str, text: str) -> None:
    """Shows a sign-in message: in IPython as rich output, else on stdout."""
    if kind == "browser":
        text = f"Opening a browser to sign in. If none opens, visit: {text}"
    ipython = sys.modules.get("IPython")
    shell = ipython.get_ipython() if ipython is not None else None  # type: ignore[attr-defined]
    if shell is not None:
        from IPython.display import Markdown, display  # type: ignore[import-not-found]

        display(Markdown(text))
    else:
        print(text, flush=True)


def _edits(a: str, b: str) -> int:
    prev = list(range(len(b) + 1))
    for i, ca in enumerate(a):
        cur = [i + 1]
        for j, cb in enumerate(b):
            cur.append(min(prev[j] + (ca != cb), prev[j + 1] + 1, cur[j] + 1))
        prev = cur
    return prev[len(b)]


def _typo_of(name: str, declared: list) -> str | None:
    """The declared name ``name`` surely mistypes (the library's rule: one edit in a name of four to seven letters,
    two in a longer one), or None."""
    a = name.lower()
    best = None
    for d in declared:
        b = d.lower()
        if a == b or len(a) < 4 or len(b) < 4:
            continue
        n = _edits(a, b)
        if n <= (2 if len(b) >= 8 else 1) and (best is None or n < best[0]):
            best = (n, d)
    return best[1] if best else None


def _check_output(output: Any) -> str:
    """``output=`` checked before any request is sent."""
    if output not in _OUTPUTS:
        raise ValueError(f"output={output!r}: expected one of {', '.join(_OUTPUTS)}")
    return output


def _convert(result: Any, output: str) -> Any:
    import pyarrow as pa

    table = pa.table(result)
    if output == "arrow":
        return table
    if output == "polars":
        try:
            import polars as pl  # type: ignore[import-not-found]
        except ImportError as e:  # pragma: no cover - depends on the environment
            raise ImportError("output='polars' needs polars: pip install polars") from e
        return pl.from_arrow(table)
    return table.to_pandas()


class QueryFunction:
    """One query, callable: ``qry_prov.Alerts.list(start="-7d", severity="high")`` → DataFrame.

    Positional ``"print"`` returns the request instead of sending it; ``"help"`` prints the query's help.
    ``output="arrow"``/``"polars"`` change the result type; ``strict=True`` makes unknown parameters an error
    (by default they are dropped with a warning, as msticpy passes extra keywords through pivots).
    """

    def __init__(self, provider: "QueryProvider", spec: dict):
        self._provider = provider
        self._spec = spec
        self.full_name = f"{spec['family']}.{spec['name']}"
        self.__name__ = spec["name"]
        self.__qualname__ = self.full_name
        self.__doc__ = _docstring(spec)

    def __repr__(self) -> str:
        return f"<secgraph query {self.full_name}>"

    def _params(self, kwargs: dict) -> tuple[list[tuple[str, str]], str, bool]:
        output = kwargs.pop("output", "pandas")
        strict = bool(kwargs.pop("strict", False))
        for option in ("instances", "split_by", "parallel", "strict_tenants", "enrich"):
            kwargs.pop(option, None)
        if output not in _OUTPUTS:
            raise ValueError(f"output={output!r}: expected one of {', '.join(_OUTPUTS)}")
        known = set()
        for p in self._spec["parameters"]:
            known.add(p["name"])
            known.update(p["aliases"])
        unknown = sorted(k for k in kwargs if k not in known)
        declared = [p["name"] for p in self._spec["parameters"]]
        for k in unknown:
            typo = _typo_of(k, declared)
            if typo is not None:
                # A near-miss of a declared name is a mistake, never an unfiltered result.
                raise ValueError(f"{self.full_name} has no parameter {k!r}; did you mean {typo!r}?")
        if unknown:
            names = ", ".join(p["name"] for p in self._spec["parameters"]) or "none"
            message = f"{self.full_name} has no parameter {', '.join(unknown)} (its parameters: {names})"
            if strict:
                raise TypeError(message)
            warnings.warn(message + "; ignored", stacklevel=3)
        params = [(k, _param_text(v)) for k, v in kwargs.items() if k in known and v is not None]
        return params, output, strict

    def __call__(self, *args: Any, **kwargs: Any) -> Any:
        flags = {a.lower() for a in args if isinstance(a, str)}
        if flags & {"help", "?"}:
            print(self.__doc__)
            return None
        instances = kwargs.get("instances")
        strict_tenants = bool(kwargs.get("strict_tenants", self._provider._tenants.get("strict", False)))
        split_by = kwargs.get("split_by")
        parallel = int(kwargs.get("parallel") or 4)
        enrich = kwargs.get("enrich")
        if enrich not in (None, "ti"):
            raise ValueError(f"enrich={enrich!r}: expected 'ti' (threat intelligence) or None")
        params, output, _ = self._params(kwargs)
        if flags & {"print", "query", "debug_query"} or kwargs.get("print"):
            return self._provider._native().describe(self.full_name, params)
        if instances or self._provider._tenants.get("file") is not None:
            split = None
            if split_by:
                given = dict(params)
                rest = [(k, v) for k, v in params if k not in ("start", "end")]
                split = (given.get("start", "-1d"), given.get("end", "now"), _seconds(split_by), parallel)
                params = rest
            return self._across(list(instances or [self._provider._instance]), params, output, strict_tenants, split,
                                enrich)
        if split_by:
            given = dict(params)
            rest = [(k, v) for k, v in params if k not in ("start", "end")]
            result = self._provider._native().run_split(
                self.full_name, rest, given.get("start", "-1d"), given.get("end", "now"), _seconds(split_by), parallel
            )
            return _convert(result, output)
        result = self._provider._native().run(self.full_name, params, None, enrich)
        return _convert(result, output)

    def _across(self, instances: list, params: list, output: str, strict_tenants: bool = False,
                split: tuple | None = None, enrich: str | None = None) -> Any:
        """The query against several tenants — the instances given, each expanded into its tenants when a tenants
        file is in play. Every tenant's status (tenant, name, instance, rows, pages, retries, budget_wait_s, error)
        is ``df.attrs["secgraph_status"]`` (pandas) and ``provider.last_status``; failed tenants are named in a
        warning and the others' rows kept, unless ``strict_tenants=True`` makes any failure an error."""
        import pandas as pd

        config, options, prompt = self._provider._connect_args
        if enrich:
            options = {**options, "enrich": enrich}
        t = self._provider._tenants
        result, status = _native.Provider.run_targets(
            config, options, [str(i) for i in instances], self.full_name, params,
            t.get("file"), list(t.get("tags") or []), list(t.get("ids") or []), prompt, None, split,
        )
        frame_status = pd.DataFrame(
            status, columns=["tenant", "name", "instance", "rows", "pages", "retries", "budget_wait_s", "error"]
        )
        self._provider.last_status = frame_status
        failed = [(name, error) for (_, name, _, _, _, _, _, error) in status if error]
        if failed and (strict_tenants or len(failed) == len(status)):
            raise secgraph_error(failed, len(status), "tenant" if t.get("file") else "instance")
        if failed:
            warnings.warn(
                "partial result: " + "; ".join(f"{i}: {e}" for i, e in failed)
                + f" ({len(failed)} of {len(status)} tenant(s) failed; the other tenants' rows are kept)",
                stacklevel=3,
            )
        frame = _convert(result, output)
        if output == "pandas":
            frame.attrs["secgraph_status"] = frame_status
            frame.attrs["failed_instances"] = dict(failed)
        return frame

    def batches(self, *args: Any, **kwargs: Any) -> Iterator[Any]:
        """Yields pyarrow RecordBatches as pages arrive (memory stays flat for big pulls)."""
        import pyarrow as pa

        params, _, _ = self._params(kwargs)
        stream = self._provider._native().stream(self.full_name, params)
        while (chunk := stream.next_batch()) is not None:
            yield from pa.table(chunk).to_batches()

    async def aio(self, *args: Any, **kwargs: Any) -> Any:
        """The asyncio variant: ``df = await qry_prov.Alerts.list.aio(start="-1d")``. Cancelling the awaiting task
        stops the query."""
        params, output, _ = self._params(kwargs)
        native = self._provider._native()
        token = _native.CancelToken()
        call = functools.partial(native.run, self.full_name, params, token)
        result = await _run_cancellable(call, token)
        return _convert(result, output)


def _names(value: Any) -> list:
    """A list of names from a list, or from one comma-separated string."""
    if value is None:
        return []
    if isinstance(value, str):
        return [v.strip() for v in value.split(",") if v.strip()]
    return [str(v) for v in value]


def secgraph_error(failed: list, total: int, noun: str = "instance") -> Exception:
    """The error for a query across tenants that failed on every tenant, or on any with ``strict_tenants``."""
    every = f"every {noun} failed" if len(failed) == total else f"{len(failed)} of {total} {noun}(s) failed"
    return _native.SecGraphError(every + ": " + "; ".join(f"{i}: {e}" for i, e in failed))


async def _run_cancellable(call: Callable[[], Any], token: Any) -> Any:
    loop = asyncio.get_running_loop()
    future = loop.run_in_executor(None, call)
    try:
        return await asyncio.shield(future)
    except asyncio.CancelledError:
        token.cancel()
        raise


def _docstring(spec: dict) -> str:
    lines = [spec["description"].strip() or spec["name"], "", "Parameters", "----------"]
    for p in spec["parameters"]:
        kind = p["type"]
        optional = "" if p["required"] else ", optional"
        lines.append(f"{p['name']} : {kind}{optional}")
        text = p["description"].strip()
        if p["default"] is not None:
            text += f" (default: {p['default']})"
        if p["aliases"]:
            text += f" Also: {', '.join(p['aliases'])}."
        lines.append(f"    {text.strip()}")
    lines += [
        "instances : list of str, optional",
        "    Run against these instances of the settings at once; rows get TenantId and Instance columns.",
        "split_by : str, optional",
        "    Run the time range as slices ('1d', '6h'), 'parallel' (default 4) at once.",
        "output : str, optional",
        "    'pandas' (default), 'arrow' or 'polars'.",
        "strict : bool, optional",
        "    Unknown parameters raise TypeError instead of a warning.",
        "",
        "Returns",
        "-------",
        "pandas.DataFrame",
    ]
    return "\n".join(lines)


class QueryFamily:
    """A family of queries (``qry_prov.Alerts``); its queries are attributes."""

    def __init__(self, name: str, queries: dict[str, QueryFunction]):
        self._name = name
        self._queries = queries

    def __getattr__(self, name: str) -> QueryFunction:
        try:
            return self.__dict__["_queries"][name]
        except KeyError:
            raise AttributeError(f"{self._name} has no query {name!r} (its queries: {', '.join(sorted(self._queries))})") from None

    def __dir__(self) -> list[str]:
        return sorted(self._queries)

    def __repr__(self) -> str:
        return f"<secgraph query family {self._name}: {', '.join(sorted(self._queries))}>"


class QueryProvider:
    """msticpy's ``QueryProvider`` for the Microsoft Graph Security API, on secgraph's engine.

    >>> qry_prov = QueryProvider("SecurityGraph")          # doctest: +SKIP
    >>> qry_prov.connect()                                 # doctest: +SKIP
    >>> df = qry_prov.Alerts.list(start="-7d", severity="high")  # doctest: +SKIP
    """

    def __init__(self, data_environment: str = "SecurityGraph", **kwargs: Any):
        if not isinstance(data_environment, str) or data_environment.lower() not in {
            e.lower() for e in DATA_ENVIRONMENTS
        }:
            raise ValueError(
                f"secgraph serves the data environments {', '.join(DATA_ENVIRONMENTS)}; not {data_environment!r}"
            )
        self.environment = data_environment
        self._kwargs = kwargs
        self._provider: Any = None
        self._families: dict[str, QueryFamily] = {}
        self._specs: list[dict] = []
        self._tenants: dict = {}
        self._instance = "Default"
        #: The per-tenant status of the last query across tenants (a pandas DataFrame), else ``None``.
        self.last_status: Any = None

    # -- connection ---------------------------------------------------------------------------------------------
    def connect(self, connection_str: str | None = None, **kwargs: Any) -> None:
        """Connects with msticpy's rules: the ``MicrosoftGraph`` settings of msticpyconfig.yaml (found as msticpy
        finds it, or given with ``config=``), a named ``instance=``, keyword credentials (``tenant_id``,
        ``client_id``, ``client_secret``, ``certificate``, ``private_key``, ``username``), a connection string, or
        delegated sign-in (``delegated_auth=True``; ``auth_type="device"`` for a device code). Sign-in messages go
        to ``prompt(kind, text)`` (default: printed, or displayed in IPython). ``requests_per_minute`` overrides
        Graph's budgets (150 a minute for alerts and incidents, 45 for hunting), which are kept by default; ``retries``
        is how many times at most a throttled, unavailable or dropped request is sent again (0 to 20).

        Many tenants with one multi-tenant app: ``tenants="tenants.csv"`` (or an instance whose ``Args.Tenants``
        names a file) runs every query against each tenant of the file — narrowed by ``tenant_tags=[...]`` and
        ``tenant_ids=[...]`` — signing in to each with the instance's credential; rows carry ``TenantId`` and
        ``Instance``, ``df.attrs["secgraph_status"]`` and ``last_status`` hold each tenant's status, and
        ``strict_tenants=True`` makes any failed tenant an error. The instance itself (its ``TenantId``: the app's
        home tenant) is signed in to first."""
        options = dict(self._kwargs)
        options.update(kwargs)
        config = options.pop("config", None)
        prompt = options.pop("prompt", None) or _default_prompt
        tenants = {
            "file": options.pop("tenants", None),
            "tags": _names(options.pop("tenant_tags", None)),
            "ids": _names(options.pop("tenant_ids", None)),
            "strict": bool(options.pop("strict_tenants", False)),
        }
        known = {
            "instance", "tenant_id", "client_id", "client_secret", "username", "certificate", "private_key",
            "api_root", "api_version", "delegated_auth", "auth_type", "token_cache", "requests_per_minute", "retries",
        }
        unknown = sorted(k for k in options if k not in known)
        if unknown:
            warnings.warn(f"connect() ignores {', '.join(unknown)}", stacklevel=2)
        options = {k: v for k, v in options.items() if k in known}
        for k in ("tenant_id", "client_id", "client_secret", "username", "certificate", "private_key",
                  "api_root", "api_version", "auth_type", "token_cache", "instance"):
            v = options.get(k)
            if v is not None and not isinstance(v, (str, os.PathLike, uuid.UUID)):
                # Never the value: it may be a secret.
                raise TypeError(f"connect(): {k} must be text (str), not {type(v).__name__}")
        if connection_str is not None:
            options["connection_str"] = connection_str
        config = str(config) if config is not None else None
        self._provider = _native.Provider.connect(config, options, prompt)
        # Kept for queries across instances, which connect to each instance with the same inputs.
        self._connect_args = (config, {k: v for k, v in options.items() if k != "instance"}, prompt)
        self._instance = str(options.get("instance") or "Default")
        if tenants["file"] is None:
            tenants["file"] = _native.tenants_file(config, self._instance)
        elif isinstance(tenants["file"], os.PathLike):
            tenants["file"] = os.fspath(tenants["file"])
        if tenants["file"] is None and (tenants["tags"] or tenants["ids"]):
            raise ValueError("tenant_tags/tenant_ids choose among a tenants file: give tenants=\"FILE\" "
                             "or connect to an instance whose Args.Tenants names one")
        self._tenants = tenants
        self._load_queries()

    @property
    def connected(self) -> bool:
        """Whether connect() succeeded."""
        return self._provider is not None

    @property
    def connection_info(self) -> dict:
        """Tenant, app, cloud, Graph root and roles of the connection."""
        return json.loads(self._native().info_json())

    def _native(self) -> Any:
        if self._provider is None:
            raise RuntimeError("not connected: call connect() first")
        return self._provider

    def _load_queries(self) -> None:
        self._specs = json.loads(self._provider.queries_json())
        families: dict[str, dict[str, QueryFunction]] = {}
        every: dict[str, QueryFunction] = {}
        for spec in self._specs:
            fn = QueryFunction(self, spec)
            families.setdefault(spec["family"], {})[spec["name"]] = fn
            every.setdefault(spec["name"], fn)
        self._families = {name: QueryFamily(name, qs) for name, qs in families.items()}
        # msticpy also reaches queries by bare name through the data environment and `all_queries`.
        for alias in (*DATA_ENVIRONMENTS, "all_queries"):
            self._families.setdefault(alias, QueryFamily(alias, every))

    def __getattr__(self, name: str) -> QueryFamily:
        families = self.__dict__.get("_families") or {}
        if name in families:
            return families[name]
        if not self.__dict__.get("_provider"):
            raise AttributeError(f"{name}: not connected yet (queries appear after connect())")
        raise AttributeError(f"no query family {name!r} (families: {', '.join(sorted(families))})")

    def __dir__(self) -> list[str]:
        return sorted(set(super().__dir__()) | set(self._families))

    # -- queries ------------------------------------------------------------------------------------------------
    def list_queries(self, substring: str | None = None) -> list[str]:
        """Every query as ``Family.name``, optionally only those containing ``substring`` (case-insensitive)."""
        names = sorted(f"{s['family']}.{s['name']}" for s in self._specs)
        if substring:
            names = [n for n in names if substring.lower() in n.lower()]
        return names

    def query_help(self, query_name: str) -> None:
        """Prints a query's description and parameters."""
        family, _, name = query_name.rpartition(".")
        fam = self._families.get(family or "all_queries")
        if fam is None or name not in fam._queries:
            raise ValueError(f"no query {query_name!r}; see list_queries()")
        print(f"{query_name}\n\n{fam._queries[name].__doc__}")

    def exec_query(self, query: str, output: str = "pandas", all: bool = False, **kwargs: Any) -> Any:
        """Runs a raw Graph path under the versioned root. A ``$top`` you write means that many rows, in one request
        (``/security/alerts_v2?$top=5`` gives five alerts, as Graph PowerShell's ``-Top 5`` does); ``all=True`` reads
        every page, ``$top`` then being the page size. Without ``$top``, every page."""
        if kwargs:
            warnings.warn(f"exec_query() ignores {', '.join(sorted(kwargs))}", stacklevel=2)
        _check_output(output)
        return _convert(self._native().run_path(query, None, bool(all)), output)

    async def exec_query_aio(self, query: str, output: str = "pandas", all: bool = False) -> Any:
        """The asyncio variant of exec_query."""
        _check_output(output)
        token = _native.CancelToken()
        result = await _run_cancellable(functools.partial(self._native().run_path, query, token, bool(all)), token)
        return _convert(result, output)

    # -- identity response actions ----------------------------------------------------------------------------
    def identity_action(self, account: str, action: str, provider: str | None = None, yes: bool = False) -> dict:
        """A Defender for Identity response action on ``account`` (its id, security identifier or display name):
        ``action`` is ``disable``, ``enable``, ``forcePasswordReset``, ``revokeAllSessions``,
        ``requireUserToSignInAgain`` or ``markUserAsCompromised``; ``provider`` (``entraID``, ``activeDirectory``,
        ``okta``) defaults to the first of the account's identities that allows it. Returns ``{"plan": …, "sent":
        …, "reply": …}``: without ``yes=True`` nothing is sent; an account already in the state asked for is said so
        in ``plan["already"]`` and nothing is sent."""
        return json.loads(self._native().identity_action(str(account), str(action), provider, bool(yes)))

    # -- detection rules ----------------------------------------------------------------------------------------
    @property
    def rules(self) -> Any:
        """Custom detection rules as code: ``rules.list()``, ``rules.plan(folder)``, ``rules.apply(folder,
        yes=True)`` (see :class:`secgraph._rules.Rules` and docs/RULES.md)."""
        from ._rules import Rules

        return Rules(self)

    # -- updates ------------------------------------------------------------------------------------------------
    def update_alert(self, alert_id: str, **changes: Any) -> dict:
        """Updates an alert (alerts_v2): ``status``, ``classification``, ``determination``, ``assigned_to``
        (``""`` unassigns), ``comment``, ``tags``. Returns the alert after the update."""
        return self._update("alert", alert_id, changes)

    def update_incident(self, incident_id: str, **changes: Any) -> dict:
        """Updates an incident: ``status``, ``classification``, ``determination``, ``assigned_to``, ``comment``,
        ``tags`` (custom tags). Returns the incident after the update."""
        return self._update("incident", incident_id, changes)

    def _update(self, target: str, item_id: str, changes: dict) -> dict:
        allowed = {"status", "classification", "determination", "assigned_to", "comment", "tags"}
        unknown = sorted(set(changes) - allowed)
        if unknown:
            raise TypeError(f"cannot update {', '.join(unknown)} (updatable: {', '.join(sorted(allowed))})")
        tags = changes.get("tags") or []
        if isinstance(tags, str):
            tags = [tags]
        text = self._native().update(
            target,
            str(item_id),
            changes.get("status"),
            changes.get("classification"),
            changes.get("determination"),
            changes.get("assigned_to"),
            changes.get("comment"),
            [str(t) for t in tags],
        )
        return json.loads(text)


class AsyncQueryProvider(QueryProvider):
    """A QueryProvider whose ``connect`` is awaitable; queries have ``.aio(...)`` as on QueryProvider."""

    async def connect(self, connection_str: str | None = None, **kwargs: Any) -> None:  # type: ignore[override]
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, functools.partial(QueryProvider.connect, self, connection_str, **kwargs))
