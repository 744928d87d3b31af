"""The documentation's Python: every ```python block of README.md and docs/*.md compiles, every attribute it reaches
on a provider (``qry_prov.X.Y``) or on the package (``secgraph.X``) exists, and blocks marked
``<!-- docs-test: run -->`` run as written against the emulator (in a fresh interpreter, with ``MSTICPYCONFIG`` set
to its settings and ``qry_prov`` connected, as the text before them has it)."""

from __future__ import annotations

import ast
import os
import pathlib
import re
import subprocess
import sys
import textwrap

import pytest

import secgraph
from secgraph import QueryProvider

REPO = pathlib.Path(__file__).resolve().parents[3]


def _blocks():
    files = [REPO / "README.md", *sorted((REPO / "docs").glob("*.md"))]
    for f in files:
        text = f.read_text()
        for m in re.finditer(r"(?:^|\n)(?P<mark><!-- docs-test: [^>]*-->\n)?```python\n(?P<body>.*?)```", text, re.S):
            line = text[: m.start("body")].count("\n") + 1
            mark = m.group("mark") or ""
            yield pytest.param(f.name, line, m.group("body"), "docs-test: run" in mark, id=f"{f.name}:{line}")


BLOCKS = list(_blocks())


def test_the_docs_have_python_blocks():
    assert len(BLOCKS) >= 8
    assert sum(1 for b in BLOCKS if b.values[3]) >= 3, "some blocks run"


def _chains(tree: ast.AST, root: str):
    """Every attribute chain rooted at the name ``root``: qry_prov.Alerts.list → ["Alerts", "list"]."""
    for node in ast.walk(tree):
        if isinstance(node, ast.Attribute):
            chain = []
            n = node
            while isinstance(n, ast.Attribute):
                chain.append(n.attr)
                n = n.value
            if isinstance(n, ast.Name) and n.id == root:
                yield list(reversed(chain))


@pytest.mark.parametrize("doc,line,body,run", BLOCKS)
def test_a_block_compiles_and_names_what_exists(doc, line, body, run, qp):
    tree = ast.parse(body, filename=f"{doc}:{line}")
    msticpy_block = "msticpy.QueryProvider" in body
    for chain in _chains(tree, "qry_prov"):
        if msticpy_block:
            continue  # msticpy's provider: checked by running the block
        obj = qp
        for attr in chain[:2]:
            assert hasattr(obj, attr), f"{doc}:{line}: qry_prov.{'.'.join(chain)}: no {attr!r}"
            obj = getattr(obj, attr)
    for chain in _chains(tree, "secgraph"):
        assert hasattr(secgraph, chain[0]) or chain[0] == "msticpy", f"{doc}:{line}: secgraph.{chain[0]} does not exist"


@pytest.mark.parametrize("doc,line,body,run", [b for b in BLOCKS if b.values[3]])
def test_a_marked_block_runs_as_written(doc, line, body, run, emu, tmp_path):
    import secgraph.msticpy

    config = tmp_path / "msticpyconfig.yaml"
    config.write_text(open(emu.config_path).read() + f"\nPluginFolders:\n  - '{secgraph.msticpy.PLUGIN_FOLDER}'\n")
    prelude = textwrap.dedent(f"""
        import warnings
        warnings.simplefilter("ignore")
        from secgraph import QueryProvider
        qry_prov = QueryProvider("SecurityGraph")
        qry_prov.connect(config={str(config)!r})
    """)
    script = tmp_path / "block.py"
    script.write_text(prelude + body.replace("/lake/security", str(tmp_path / "lake")))
    env = dict(os.environ, MSTICPYCONFIG=str(config))
    out = subprocess.run([sys.executable, str(script)], capture_output=True, text=True, timeout=600, env=env, cwd=tmp_path)
    assert out.returncode == 0, f"{doc}:{line}:\n{out.stderr[-3000:]}"
