"""Every msticpy connect form, against the emulator."""

from __future__ import annotations

import pytest

import secgraph
from secgraph import QueryProvider
from secgraph.emulator import DEMO_CLIENT_ID, DEMO_CLIENT_SECRET, DEMO_TENANT_ID


def _alerts(p: QueryProvider) -> int:
    return len(p.exec_query("/security/alerts_v2?$top=100", all=True))


def test_data_environment_names(emu):
    QueryProvider("SecurityGraph")
    QueryProvider("MicrosoftGraph")
    QueryProvider("securitygraph")
    with pytest.raises(ValueError) as e:
        QueryProvider("MSSentinel")
    assert "SecurityGraph" in str(e.value) and "MicrosoftGraph" in str(e.value)


def test_connect_finds_msticpyconfig_as_msticpy_does(emu, monkeypatch):
    monkeypatch.setenv("MSTICPYCONFIG", emu.config_path)
    p = QueryProvider("SecurityGraph")
    p.connect()
    assert p.connection_info["tenant_id"] == DEMO_TENANT_ID
    assert _alerts(p) == 300


def test_connect_named_instance(emu):
    p = QueryProvider("SecurityGraph")
    p.connect(config=emu.config_path, instance="Fabrikam")
    assert p.connection_info["source"] == "DataProviders.MicrosoftGraph-Fabrikam"
    assert p.connection_info["tenant_id"] != DEMO_TENANT_ID


def test_connect_keyword_credentials(emu):
    p = QueryProvider("SecurityGraph")
    p.connect(config=emu.config_path, tenant_id=DEMO_TENANT_ID, client_id=DEMO_CLIENT_ID, client_secret=DEMO_CLIENT_SECRET)
    assert _alerts(p) == 300


def test_connect_connection_string(emu):
    p = QueryProvider("SecurityGraph")
    p.connect(
        f"tenant_id='{DEMO_TENANT_ID}'; client_id='{DEMO_CLIENT_ID}'; client_secret='{DEMO_CLIENT_SECRET}'",
        config=emu.config_path,
    )
    assert _alerts(p) == 300


def test_connect_delegated_device_code_goes_through_the_callback(emu, tmp_path):
    shown = []
    p = QueryProvider("SecurityGraph")
    p.connect(
        config=emu.config_path,
        delegated_auth=True,
        auth_type="device",
        token_cache=str(tmp_path / "tokens.json"),
        prompt=lambda kind, text: shown.append((kind, text)),
    )
    assert shown and shown[0][0] == "device_code" and "enter the code" in shown[0][1]
    assert _alerts(p) == 300


def test_bad_secret_is_an_authentication_error_that_does_not_show_it(emu):
    p = QueryProvider("SecurityGraph")
    with pytest.raises(secgraph.AuthenticationError) as e:
        p.connect(config=emu.config_path, tenant_id=DEMO_TENANT_ID, client_id=DEMO_CLIENT_ID, client_secret="wrong-secret-value")
    assert "wrong-secret-value" not in str(e.value)
    assert "AADSTS" in str(e.value)


def test_queries_need_a_connection():
    p = QueryProvider("SecurityGraph")
    with pytest.raises(AttributeError, match="not connected"):
        p.Alerts


def test_non_text_secrets_are_a_type_error_that_does_not_show_them(emu):
    p = QueryProvider("SecurityGraph")
    with pytest.raises(TypeError) as e:
        p.connect(tenant_id=DEMO_TENANT_ID, client_id=DEMO_CLIENT_ID, client_secret=b"\xffSECRETBYTES")
    assert "client_secret must be text" in str(e.value) and "SECRETBYTES" not in str(e.value)
    assert not p.connected


def test_an_unknown_output_is_a_value_error_before_any_request(emu):
    p = QueryProvider("SecurityGraph")
    p.connect(config=emu.config_path)
    with pytest.raises(ValueError, match="output='nope'"):
        # Not a path the emulator serves: had the request been sent, the error would be Graph's, not ValueError.
        p.exec_query("/security/nothing-here", output="nope")


def test_exceptions_carry_status_request_id_and_aadsts_codes(emu):
    p = QueryProvider("SecurityGraph")
    with pytest.raises(secgraph.AuthenticationError) as e:
        p.connect(config=emu.config_path, tenant_id=DEMO_TENANT_ID, client_id=DEMO_CLIENT_ID, client_secret="wrong-secret-value")
    assert e.value.status == 401 and 7000215 in e.value.aadsts_codes, (e.value.status, e.value.aadsts_codes)
    p.connect(config=emu.config_path)
    with pytest.raises(secgraph.ServiceError) as e:
        p.exec_query("/security/alerts_v2?$filter=nosuchfield eq 1")
    assert e.value.status == 400 and e.value.request_id, (e.value.status, e.value.request_id)
    assert e.value.retry_after is None and e.value.aadsts_codes == []
    with pytest.raises(secgraph.QueryError) as e:
        p.Alerts.list(start="not a time")
    assert e.value.status is None and e.value.request_id is None


def test_names_and_messages_a_user_meets(emu, tmp_path, monkeypatch):
    # Exceptions print under the package's public names.
    assert secgraph.QueryError.__module__ == "secgraph" and secgraph.QueryError.__name__ == "QueryError"
    # No settings file anywhere, no keywords: the error says where msticpy's places were looked at.
    monkeypatch.delenv("MSTICPYCONFIG", raising=False)
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("HOME", str(tmp_path))
    with pytest.raises(secgraph.ConfigurationError, match="no msticpyconfig.yaml found; looked in"):
        QueryProvider("SecurityGraph").connect()
    # The unnamed instance answers to Default, default and MicrosoftGraph.
    for name in ("Default", "default", "MicrosoftGraph"):
        p = QueryProvider("SecurityGraph")
        p.connect(config=emu.config_path, instance=name)
        assert p.connection_info["source"] == "DataProviders.MicrosoftGraph", name


def test_no_secret_or_token_reaches_pythons_log_at_any_level(emu, caplog):
    import logging

    loggers = [logging.getLogger(n) for n in ("secgraph", "secgraph_emulator")]
    try:
        with caplog.at_level(1):  # everything, down to TRACE
            for logger in loggers:
                logger.setLevel(1)
            p = QueryProvider("SecurityGraph")
            p.connect(config=emu.config_path, tenant_id=DEMO_TENANT_ID, client_id=DEMO_CLIENT_ID,
                      client_secret=DEMO_CLIENT_SECRET)
            p.exec_query("/security/alerts_v2?$top=3")
    finally:
        for logger in loggers:
            logger.setLevel(logging.NOTSET)
    text = "\n".join(r.getMessage() for r in caplog.records)
    assert any(r.name.startswith("secgraph") for r in caplog.records), "the engine logs into Python"
    assert DEMO_CLIENT_SECRET not in text
    assert "eyJ" not in text, "a token reached the log"
