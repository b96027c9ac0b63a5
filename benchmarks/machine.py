"""The machine a benchmark ran on, printed above every report.

Benchmark figures mean nothing without the hardware and software they came
from, so every report starts with these lines. Reading fails soft: a field
that cannot be found says so rather than stopping the benchmark.
"""

from __future__ import annotations

import datetime
import os
import platform
from importlib import metadata
from pathlib import Path

__all__ = ["PACKAGES", "describe"]

# The packages whose versions move the numbers: the SDK under test, the server
# stack, the JSON encoder and the peer SDK it is compared with.
PACKAGES = ("livepages", "starlette", "uvicorn", "uvloop", "msgspec", "datastar-py")


def describe() -> list[str]:
    """Describe this machine as ``name: value`` text lines, one fact per line."""
    return [
        f"date: {datetime.datetime.now(datetime.UTC):%Y-%m-%d %H:%M UTC}",
        f"cpu: {_cpu_model()}",
        f"cores: {_cores()}",
        f"ram: {_ram()}",
        f"os: {platform.platform()}",
        f"python: {platform.python_implementation()} {platform.python_version()}"
        f" ({platform.python_compiler()})",
        "packages: " + ", ".join(f"{name} {_version(name)}" for name in PACKAGES),
    ]


def _read(path: str) -> str:
    try:
        return Path(path).read_text()
    except OSError:
        return ""


def _proc_field(text: str, names: tuple[str, ...]) -> str | None:
    """The value of the first ``name: value`` line of a /proc file among ``names``."""
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip() in names and value.strip():
            return value.strip()
    return None


def _cpu_model() -> str:
    # x86 says "model name"; ARM kernels say "Hardware" or "Model" instead.
    model = _proc_field(_read("/proc/cpuinfo"), ("model name", "Hardware", "Model"))
    return model or platform.processor() or platform.machine() or "unknown"


def _cores() -> str:
    logical = os.cpu_count() or 0
    text = f"{logical} logical"
    # A container or taskset can leave this process fewer CPUs than the host has.
    if hasattr(os, "sched_getaffinity"):
        text += f", {len(os.sched_getaffinity(0))} usable by this process"
    quota = _cgroup_cpu_quota()
    if quota is not None:
        text += f", cgroup quota {quota:g} CPUs"
    return text


def _cgroup_cpu_quota() -> float | None:
    """The cgroup v2 CPU limit (``cpu.max``), or None when there is none."""
    fields = _read("/sys/fs/cgroup/cpu.max").split()
    if len(fields) != 2 or fields[0] == "max":
        return None
    try:
        return int(fields[0]) / int(fields[1])
    except (ValueError, ZeroDivisionError):
        return None


def _ram() -> str:
    meminfo = _read("/proc/meminfo")
    total_kb = _meminfo_kb(meminfo, "MemTotal")
    if total_kb is None:
        try:
            total_kb = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") // 1024
        except (AttributeError, ValueError, OSError):
            return "unknown"
    text = f"{total_kb / 2**20:.1f} GiB total"
    available_kb = _meminfo_kb(meminfo, "MemAvailable")
    if available_kb is not None:
        text += f", {available_kb / 2**20:.1f} GiB available"
    return text


def _meminfo_kb(meminfo: str, name: str) -> int | None:
    value = _proc_field(meminfo, (name,))
    if value is None or not value.endswith(" kB"):
        return None
    try:
        return int(value.removesuffix(" kB"))
    except ValueError:
        return None


def _version(name: str) -> str:
    try:
        return metadata.version(name)
    except metadata.PackageNotFoundError:
        return "not installed"


if __name__ == "__main__":
    print("\n".join(describe()))
