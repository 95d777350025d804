"""Console entry point.

``imagesmith doctor`` runs inside slim pods, so it is dispatched before click (or anything else
outside the standard library) is imported; every other command goes through the click CLI.
"""

from __future__ import annotations

import sys


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    try:
        code = _dispatch(args)
    except BrokenPipeError:
        _silence_stdout()
        return 0
    if argv is None and args[:1] == ["doctor"]:
        _end_process(code)
    return code


def _silence_stdout() -> None:
    # `imagesmith ... | head`: the reader left. Point stdout at /dev/null so the flush at exit does not
    # raise again (the recipe in Python's signal docs), and end quietly.
    import os

    os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())


def _end_process(code: int) -> None:
    """End a doctor run now: flush what it printed and leave without the interpreter's teardown.

    Freeing every module and object at exit costs ~2 ms, as much as ``doctor why`` spends resolving a
    torch tree, and buys a one-shot command nothing: the doctor has reaped its children (the loader
    runs, the probe), closed its files and registered no atexit hook by then. Only for the console script
    and ``python -m imagesmith`` (``argv is None``); a caller of ``main([...])`` gets the code back.
    """
    import os

    try:
        sys.stdout.flush()
        sys.stderr.flush()
    except BrokenPipeError:
        _silence_stdout()
        code = 0
    os._exit(code)


def _dispatch(args: list[str]) -> int:
    if args and args[0] == "doctor":
        from imagesmith.doctor.cli import main as doctor_main

        code: int = doctor_main(args[1:])
        return code
    if args[:2] == ["matrix", "check"]:
        # The most frequent question, answered without click (~16 ms of imports); help and anything
        # unusual still go through click (quick returns None).
        from imagesmith.matrix.answer import quick

        answered = quick(args[2:])
        if answered is not None:
            return answered
    if args[:2] == ["images", "plan"]:
        # Planning from the policy, without click (~19 ms); help and anything unusual go through click.
        from imagesmith.images.plan_view import quick as plan_quick

        planned = plan_quick(args[2:])
        if planned is not None:
            return planned
    if args[:1] == ["pick"]:
        # The picker's answer without click (~25 ms); help and anything unusual go through click.
        from imagesmith.picker.quick import main as pick_quick

        picked = pick_quick(args[1:])
        if picked is not None:
            return picked
    if args == ["--version"]:
        # Same text as click's version option, without importing click (~30 ms) for the most common probe.
        from imagesmith import __version__

        print(f"imagesmith, version {__version__}")
        return 0
    from imagesmith.cli import run

    return run(args)


if __name__ == "__main__":
    sys.exit(main())
