"""Notebook behaviour: Ctrl-C stops a running query at once; cancelling an asyncio task stops it; the GIL is free
while a query waits on the network."""

from __future__ import annotations

import asyncio
import signal
import subprocess
import sys
import textwrap
import threading
import time

import pytest

SLOW = "alerts_v2:slow-first-byte(20000)"


def test_keyboard_interrupt_cancels_a_running_query(tmp_path):
    script = tmp_path / "slow.py"
    script.write_text(textwrap.dedent(f"""
        import signal, sys, time
        # A notebook's Ctrl-C, whatever the runner left SIGINT as (a background job starts with it ignored).
        signal.signal(signal.SIGINT, signal.default_int_handler)
        from secgraph import QueryProvider
        from secgraph.emulator import Emulator
        emu = Emulator(alerts=20, faults="{SLOW}")
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        print("ready", flush=True)
        t = time.monotonic()
        try:
            qp.exec_query("/security/alerts_v2")
        except KeyboardInterrupt:
            print(f"interrupted after {{time.monotonic() - t:.2f}}s", flush=True)
            sys.exit(3)
        print("finished", flush=True)
    """))
    proc = subprocess.Popen([sys.executable, str(script)], stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    assert proc.stdout.readline().strip() == "ready"
    time.sleep(1.0)
    sent = time.monotonic()
    proc.send_signal(signal.SIGINT)
    out, err = proc.communicate(timeout=15)
    waited = time.monotonic() - sent
    assert proc.returncode == 3, (out, err)
    assert "interrupted after" in out
    assert waited < 5, f"took {waited:.1f}s to stop after Ctrl-C"


def test_cancelling_an_async_query_stops_it():
    from secgraph import QueryProvider
    from secgraph.emulator import Emulator

    with Emulator(alerts=20, faults=SLOW) as emu:
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)

        async def main():
            t = time.monotonic()
            with pytest.raises(asyncio.TimeoutError):
                await asyncio.wait_for(qp.Alerts.list.aio(start="-30d"), timeout=0.5)
            return time.monotonic() - t

        assert asyncio.run(main()) < 3


def test_the_gil_is_released_while_waiting():
    from secgraph import QueryProvider
    from secgraph.emulator import Emulator

    with Emulator(alerts=20, faults="alerts_v2:slow-first-byte(1500)") as emu:
        qp = QueryProvider("SecurityGraph")
        qp.connect(config=emu.config_path)
        ticks = 0
        stop = threading.Event()

        def spin():
            nonlocal ticks
            while not stop.is_set():
                ticks += 1
                time.sleep(0.01)

        t = threading.Thread(target=spin)
        t.start()
        qp.exec_query("/security/alerts_v2")
        stop.set()
        t.join()
        # 1.5 s of waiting: a thread that held the GIL would have let the spinner run only a few times.
        assert ticks > 50
