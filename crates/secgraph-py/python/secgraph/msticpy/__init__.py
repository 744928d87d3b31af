"""secgraph as a msticpy data provider plugin.

Add the folder to msticpyconfig.yaml::

    PluginFolders:
      - /path/printed/by: python -c "import secgraph.msticpy as m; print(m.PLUGIN_FOLDER)"

or load it in code with ``msticpy.init.mp_plugins.read_plugins([secgraph.msticpy.PLUGIN_FOLDER])``; then
``msticpy.QueryProvider("SecGraph")`` runs on secgraph's engine with the same ``MicrosoftGraph`` settings and
secgraph's built-in queries. msticpy is not a dependency of secgraph: the driver imports it only when msticpy loads it.
"""

from pathlib import Path

#: The folder msticpy's plugin loader scans (it holds one module, ``secgraph_msticpy_driver.py``).
PLUGIN_FOLDER = str(Path(__file__).resolve().parent / "plugin")

__all__ = ["PLUGIN_FOLDER"]
