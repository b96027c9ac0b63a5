"""Run every benchmark: ``python -m benchmarks [--only NAME[,NAME]] [--quick]``.

This is what ``make bench`` runs. The machine is described once at the top,
then each benchmark module's ``main`` runs in turn. Modules are imported only
when their turn comes, so one that is missing (or has no ``main``) is skipped
with a note instead of stopping the others; one that fails makes the exit
status non-zero.
"""

from __future__ import annotations

import argparse
import asyncio
import importlib
import inspect
import sys
import time
import traceback
from collections.abc import Callable

from benchmarks import machine

# Each benchmark and the modules that may hold its ``main``, tried in order.
BENCHMARKS: dict[str, tuple[str, ...]] = {
    "sdk_encode": ("benchmarks.sdk_encode",),
    "pages": ("benchmarks.pages",),
    "compression": ("benchmarks.compression",),
    "fanout": ("benchmarks.fanout.__main__", "benchmarks.fanout.run"),
    "personal": ("benchmarks.fanout.personal",),
    "nats": ("benchmarks.fanout.broker",),
    "tracking": ("benchmarks.tracking",),
    "classifieds": ("benchmarks.classifieds_load",),
}


def find_main(modules: tuple[str, ...]) -> Callable[..., object] | str:
    """The first ``main`` found in ``modules``, or a note saying why there is none.

    Only the absence of the module itself counts as missing: an import error
    raised inside an existing module is a bug in that benchmark and propagates.
    """
    notes = []
    for name in modules:
        try:
            module = importlib.import_module(name)
        except ModuleNotFoundError as error:
            if error.name is None or not (name == error.name or name.startswith(error.name + ".")):
                raise
            note = f"no module {error.name}"
            if note not in notes:
                notes.append(note)
            continue
        main: object = getattr(module, "main", None)
        if callable(main):
            return main
        notes.append(f"{name} has no main()")
    return "; ".join(notes)


def run(main: Callable[..., object], quick: bool) -> int:
    """Call a benchmark's ``main`` and turn its outcome into an exit status.

    A ``main`` that takes arguments gets an explicit list (never None, which
    would make it parse this runner's own command line). One that takes none
    may still read ``sys.argv``, so it sees an empty command line meanwhile.
    """
    try:
        takes_argv = bool(inspect.signature(main).parameters)
    except (TypeError, ValueError):
        takes_argv = False
    saved_argv = sys.argv
    sys.argv = [f"{main.__module__}.main"]
    try:
        result = main(["--quick"] if quick else []) if takes_argv else main()
        if inspect.iscoroutine(result):
            result = asyncio.run(result)
    except SystemExit as exit_:
        result = exit_.code
        if isinstance(result, str):
            print(result, file=sys.stderr)
    except Exception:
        traceback.print_exc()
        return 1
    finally:
        sys.argv = saved_argv
    if result is None or result == 0:
        return 0
    return result if isinstance(result, int) else 1


def _names(value: str) -> list[str]:
    names = [name.strip() for name in value.split(",") if name.strip()]
    unknown = [name for name in names if name not in BENCHMARKS]
    if unknown or not names:
        choices = ", ".join(BENCHMARKS)
        raise argparse.ArgumentTypeError(f"unknown benchmark {value!r}; choose from {choices}")
    return names


def main(argv: list[str] | None = None) -> int:
    """Describe the machine, then run the chosen benchmarks; non-zero if any failed."""
    parser = argparse.ArgumentParser(prog="python -m benchmarks", description=__doc__)
    parser.add_argument(
        "--only",
        type=_names,
        default=list(BENCHMARKS),
        metavar="NAME[,NAME]",
        help=f"run only these ({', '.join(BENCHMARKS)})",
    )
    parser.add_argument(
        "--quick", action="store_true", help="shorter runs, passed on to each benchmark"
    )
    args = parser.parse_args(argv)

    print("\n".join(machine.describe()))
    failed = []
    for name in args.only:
        print(f"\n## {name}\n", flush=True)
        try:
            main_or_note = find_main(BENCHMARKS[name])
        except Exception:
            traceback.print_exc()
            failed.append(name)
            continue
        if isinstance(main_or_note, str):
            print(f"skipped: {main_or_note}")
            continue
        started = time.perf_counter()
        status = run(main_or_note, args.quick)
        outcome = "ok" if status == 0 else f"FAILED (exit status {status})"
        print(f"\n{name}: {outcome} in {time.perf_counter() - started:.1f} s", flush=True)
        if status != 0:
            failed.append(name)
    if failed:
        print(f"\nfailed: {', '.join(failed)}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
