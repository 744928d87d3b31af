"""The msticpy plugin, loaded by a real msticpy: QueryProvider("SecGraph") runs secgraph's queries."""

from __future__ import annotations

import os
import subprocess
import sys
import textwrap


def test_msticpy_loads_the_plugin_and_runs_a_query(emu, tmp_path):
    script = tmp_path / "plugin.py"
    script.write_text(textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        import msticpy
        from msticpy.init import mp_plugins
        import secgraph.msticpy
        mp_plugins.read_plugins([secgraph.msticpy.PLUGIN_FOLDER])
        qp = msticpy.QueryProvider("SecGraph")
        qp.connect()
        # msticpy renames a query that shadows a Python builtin: Alerts.list is Alerts.list_bi there.
        df = qp.Alerts.list_bi(start="-30d")
        print("rows", len(df), type(df).__name__, str(df["createdDateTime"].dtype))
        print("raw", len(qp.exec_query("/security/incidents")))
        print("has", "SecurityGraphAlert" in dir(qp), "list_bi" in dir(qp.Alerts))
    """))
    env = dict(os.environ, MSTICPYCONFIG=emu.config_path)
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    lines = dict(line.split(" ", 1) for line in out.stdout.splitlines() if " " in line)
    rows, kind, dtype = lines["rows"].split(" ", 2)
    assert int(rows) > 0 and kind == "DataFrame" and dtype == "datetime64[us, UTC]"
    assert int(lines["raw"]) > 0
    assert lines["has"] == "True True"


def test_plugin_folders_in_the_settings_and_one_load_call_register_secgraph(emu, tmp_path):
    """msticpy 2.x reads PluginFolders only when asked (msticpy.load_plugins([]): its start-up never does); with that
    one documented call, QueryProvider("SecGraph") works, including Hunting.run(query=...)."""
    import secgraph.msticpy

    config = tmp_path / "msticpyconfig.yaml"
    config.write_text(
        open(emu.config_path).read() + f"\nPluginFolders:\n  - '{secgraph.msticpy.PLUGIN_FOLDER}'\n"
    )
    script = tmp_path / "plugin_folders.py"
    script.write_text(textwrap.dedent("""
        import warnings
        warnings.simplefilter("ignore")
        import msticpy
        msticpy.load_plugins([])          # reads PluginFolders from msticpyconfig.yaml
        qp = msticpy.QueryProvider("SecGraph")
        qp.connect()
        df = qp.Hunting.run(query="AlertInfo | take 3")
        print("hunting", len(df))
    """))
    env = dict(os.environ, MSTICPYCONFIG=str(config))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=300, env=env, cwd=tmp_path)
    assert out.returncode == 0, out.stderr[-3000:]
    assert "hunting 3" in out.stdout, out.stdout + out.stderr[-2000:]
