"""``imagesmith doctor``: standard library only, because it runs in slim pods before click is importable.

Dispatched by ``imagesmith/__main__.py`` ahead of the click CLI. Exit codes: 0 no error finding, 1 an
error finding, 2 bad input or an internal error, 3 environment problem (Docker engine unreachable).
``doctor why`` parses its three options by hand: argparse (and the typing/re/gettext it pulls in)
costs ~10 ms of its 40 ms budget. The full doctor uses argparse, imported when it runs.
"""

from __future__ import annotations

import os
import sys

from imagesmith.errors import EXIT_BAD_INPUT, ImagesmithError, UsageError

TYPE_CHECKING = False  # mypy treats this name as True; importing typing costs ~5 ms
if TYPE_CHECKING:
    import argparse
    from typing import NoReturn

PROG = "imagesmith doctor"

DESCRIPTION = """\
Explain how libcuda and libcudart are found in this pod and diagnose every mismatch with a fix.

  imagesmith doctor [--json] [--root DIR] [--strict] [--image REF]
  imagesmith doctor why FILE [--root DIR] [--json]

Exit codes: 0 no error finding, 1 an error finding (with --strict: any warning too),
2 usage or internal error, 3 environment problem (e.g. Docker engine unreachable for --image).
"""

WHY_HELP = f"""\
usage: {PROG} why [-h] [--root DIR] [--json] FILE

Explain FILE's whole dependency tree as ld.so resolves it.

positional arguments:
  FILE        an executable or shared library (inside DIR with --root)

options:
  -h, --help  show this help message and exit
  --root DIR  resolve inside the filesystem under DIR (default /)
  --json      print JSON (schema 1)

Exit codes: 0 every library found, 1 a library not found or not loadable, 2 usage error.
"""


def _parser() -> argparse.ArgumentParser:
    import argparse

    class Parser(argparse.ArgumentParser):
        def error(self, message: str) -> NoReturn:
            raise UsageError(message)

        def exit(self, status: int = 0, message: str | None = None) -> NoReturn:
            if message:
                sys.stderr.write(message)
            raise SystemExit(status)

    p = Parser(prog=PROG, description=DESCRIPTION, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--json", action="store_true", help="print JSON (schema 1) instead of text")
    p.add_argument("--root", metavar="DIR", default="/", help="inspect the filesystem under DIR (default /)")
    p.add_argument("--strict", action="store_true", help="exit 1 on warnings too")
    p.add_argument("--image", metavar="REF", help="check a local image's labels against this node")
    p.add_argument(
        "--probe-timeout",
        metavar="SECONDS",
        type=float,
        default=10.0,
        help="hard limit for the runtime probe subprocess (default 10)",
    )
    p.add_argument("--no-probe", action="store_true", help="do not load libcuda/NVML in a subprocess")
    return p


def parse_why(argv: list[str]) -> tuple[str, str, bool] | None:
    """(FILE, --root, --json) from ``why``'s arguments; ``None`` for --help; ``UsageError`` otherwise."""
    file: str | None = None
    root = "/"
    as_json = False
    rest = list(argv)
    while rest:
        arg = rest.pop(0)
        if arg == "--":
            positionals = rest
            rest = []
        elif arg in ("-h", "--help"):
            return None
        elif arg == "--json":
            as_json = True
            continue
        elif arg == "--root" or arg.startswith("--root="):
            if "=" in arg:
                root = arg.partition("=")[2]
            elif not rest:
                raise UsageError("expected one argument", where="--root")
            else:
                root = rest.pop(0)
            if not root:
                raise UsageError("must not be empty", where="--root")
            continue
        elif arg.startswith("-") and arg != "-":
            raise UsageError("no such option", where=f"why {arg}")
        else:
            positionals = [arg]
        for value in positionals:
            if file is not None:
                raise UsageError("unexpected extra argument (one FILE at a time)", where=f"why {value}")
            file = value
    if file is None:
        raise UsageError("missing FILE (try: imagesmith doctor why --help)", where="why")
    return file, root, as_json


def _check_root(root: str) -> str:
    if not os.path.isdir(root):
        raise UsageError("not a directory", where=f"--root {root}")
    return os.path.abspath(root) if root != "/" else "/"


def _run_why(argv: list[str]) -> int:
    parsed = parse_why(argv)
    if parsed is None:
        sys.stdout.write(WHY_HELP)
        return 0
    file, root_arg, as_json = parsed
    from imagesmith.probe import elf, fsroot, loaderconf, resolver, why

    root = _check_root(root_arg)
    path = file if root == "/" else ("/" + file.lstrip("/"))
    host = fsroot.host_path(root, os.path.abspath(path) if root == "/" else path)
    if not os.path.exists(host):
        raise UsageError("no such file", where=file)
    if os.path.isdir(host):
        raise UsageError("is a directory, not an ELF file", where=file)
    config = loaderconf.detect(root=root)
    try:
        res = resolver.why(os.path.abspath(path) if root == "/" else path, config)
    except elf.ElfError as exc:
        raise UsageError(f"not a loadable ELF file: {exc}", where=file) from None
    except OSError as exc:
        raise UsageError(f"cannot read: {exc.strerror}", where=file) from None
    assert res.main is not None
    if as_json:
        print(why.dumps(why.to_json(res, res.main.path)))
    else:
        print(why.to_text(res, res.main.path))
    missing = [e for e in res.edges if e.via == "not_found" or e.error]
    return 1 if missing else 0


def _run_doctor(argv: list[str]) -> int:
    import json

    args = _parser().parse_args(argv)
    root = _check_root(args.root)
    if args.probe_timeout <= 0:
        raise UsageError(
            "must be a positive number of seconds", where=f"--probe-timeout {args.probe_timeout}"
        )
    from imagesmith.probe import collect, diagnose, render

    facts = collect.collect(root=root, probe=not args.no_probe, probe_timeout=args.probe_timeout)
    if args.image:
        from imagesmith.probe import image

        labels = image.inspect(args.image)
        report = diagnose.check_image(facts, labels)
        print(json.dumps(report.to_json(), indent=2) if args.json else render.image_text(report))
        return report.exit_code(strict=args.strict)
    result = diagnose.diagnose(facts)
    print(json.dumps(render.to_json(facts, result), indent=2) if args.json else render.to_text(facts, result))
    return result.exit_code(strict=args.strict)


def main(argv: list[str]) -> int:
    """Entry point from ``imagesmith/__main__.py``; never raises."""
    try:
        if argv and argv[0] == "why":
            return _run_why(argv[1:])
        return _run_doctor(argv)
    except ImagesmithError as exc:
        print(f"imagesmith doctor: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the doctor must never print a traceback in a broken pod
        print(f"imagesmith doctor: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
