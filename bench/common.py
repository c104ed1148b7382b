"""What every benchmark here shares: the machine's description, a free port, the results file."""
from __future__ import annotations

import os
import platform
import socket
from importlib.metadata import version
from pathlib import Path

RESULTS = Path(__file__).resolve().parent / "RESULTS.md"


def machine(*packages: str) -> str:
    """OS, CPU model, cores, Python, the given packages' versions, and the load when it started:
    these machines are shared, so a number needs its context."""
    cpu = platform.processor() or ""
    try:
        with open("/proc/cpuinfo") as info:
            cpu = next((line.split(":", 1)[1].strip() for line in info if line.startswith("model name")), cpu)
    except OSError:
        pass
    versions = "".join(f", {name} {version(name)}" for name in packages)
    load = ", ".join(f"{value:.1f}" for value in os.getloadavg())
    return (f"{platform.platform()}, {cpu}, {os.cpu_count()} cores, Python {platform.python_version()}{versions}; "
            f"load average at start {load}")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def append_results(lines: list[str], path: Path = RESULTS) -> None:
    with open(path, "a") as results:
        results.write("\n".join(lines) + "\n")
