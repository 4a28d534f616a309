"""Shared fixtures. JACK: a real server with the dummy driver, so audio tests need no hardware."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import time
import uuid
from collections.abc import Iterator

import pytest


def _jack_running(name: str) -> bool:
    probe = subprocess.run(["jack_lsp", "-s", name], capture_output=True, timeout=10)
    return probe.returncode == 0


def start_jack_server(name: str, rate: int = 44100) -> subprocess.Popen[bytes]:
    """Start ``jackd`` with the dummy driver under ``name`` and wait until it answers."""
    proc = subprocess.Popen(
        ["jackd", "-n", name, "--no-realtime", "-d", "dummy", "-r", str(rate),
         "-p", "512", "-C", "2", "-P", "2"],
        stdin=subprocess.DEVNULL, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
    )
    for _ in range(100):
        if _jack_running(name):
            return proc
        if proc.poll() is not None:
            break
        time.sleep(0.1)
    proc.kill()
    err = proc.communicate()[1].decode(errors="replace")
    raise RuntimeError(f"jackd -n {name} did not start: {err}")


def stop_jack_server(proc: subprocess.Popen[bytes]) -> None:
    proc.terminate()
    try:
        proc.wait(timeout=5)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait()


def _require_jackd() -> None:
    if shutil.which("jackd") is None or shutil.which("jack_lsp") is None:
        pytest.skip("jackd is not installed (apt-get install jackd2)")


@pytest.fixture(scope="session")
def jack_server() -> Iterator[str]:
    """Name of a running JACK dummy server at 44.1 kHz that PortAudio (sounddevice) uses.

    Reuses the server named by JACK_DEFAULT_SERVER when it runs (CI starts one with
    ``.ci/jack.sh start``); otherwise starts one under a unique name. Skips only when jackd
    is not installed.
    """
    _require_jackd()
    previous = os.environ.get("JACK_DEFAULT_SERVER")
    name, proc = previous, None
    if not name or not _jack_running(name):
        name = name or f"samuel-test-{uuid.uuid4().hex[:8]}"
        proc = start_jack_server(name)
    os.environ["JACK_DEFAULT_SERVER"] = name
    _reinitialise_portaudio()  # PortAudio reads the server name when it initialises
    yield name
    if proc is not None:
        # PortAudio must let go of the server first: its JACK backend aborts the process at
        # exit (pa_jack.c "Terminate: Assertion") if the server vanished under it.
        _reinitialise_portaudio(terminate_only=True)
        stop_jack_server(proc)
        if previous is None:
            os.environ.pop("JACK_DEFAULT_SERVER", None)
        _reinitialise_portaudio()


def _reinitialise_portaudio(terminate_only: bool = False) -> None:
    sd = sys.modules.get("sounddevice")
    if sd is None:
        return  # not imported yet: it will initialise with the current environment
    if sd._initialized:
        sd._terminate()
    if not terminate_only:
        sd._initialize()


@pytest.fixture(scope="session")
def jack_server_48k() -> Iterator[str]:
    """Name of a second JACK dummy server at 48 kHz, for tests run in a subprocess."""
    _require_jackd()
    name = f"samuel-test48-{uuid.uuid4().hex[:8]}"
    proc = start_jack_server(name, rate=48000)
    yield name
    stop_jack_server(proc)


@pytest.fixture(scope="module")
def cluster() -> Iterator[None]:
    """A local Ray cluster of 2 CPUs for one test module (skipped where Ray is missing)."""
    ray = pytest.importorskip("ray", reason='Ray is not installed: pip install -e ".[cluster]"')
    ray.init(num_cpus=2, include_dashboard=False, logging_level="WARNING")
    yield
    ray.shutdown()
