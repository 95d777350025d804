"""``imagesmith doctor``: standard library only, because it runs in slim pods before click is importable.

Dispatched by ``imagesmith/__main__.py`` ahead of the click CLI. Exit codes: 0 no error finding, 1 an
error finding, 2 bad input or an internal error, 3 environment problem (``--image``: neither the registry nor
the Docker engine answers; ``--nfd-features``: the feature file cannot be written).
Options are parsed by hand (``imagesmith.doctor.loader.options``): argparse and what it pulls in cost ~15 ms.
"""

from __future__ import annotations

import os
import sys

from imagesmith.doctor.loader import options
from imagesmith.doctor.loader.options import usage_error

PROG = "imagesmith doctor"

DESCRIPTION = """\
Explain how libcuda and libcudart are found in this pod and diagnose every mismatch with a fix.

  imagesmith doctor [--json] [--root DIR] [--strict] [--image REF] [--nfd-features FILE]
  imagesmith doctor why FILE [--root DIR] [--json]
  imagesmith doctor manifest --kind daemonset|job [--image REF] [--namespace NS] [--features-dir DIR]

Exit codes: 0 no error finding, 1 an error finding (with --strict: any warning too),
2 usage or internal error, 3 environment problem (e.g. --image: neither the registry nor the Docker
engine answers; --nfd-features: the file cannot be written).
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


DOCTOR_HELP = f"""\
usage: {PROG} [-h] [--json] [--root DIR] [--strict] [--image REF] [--nfd-features FILE]
                         [--probe-timeout SECONDS] [--no-probe]

{DESCRIPTION}
options:
  -h, --help               show this help message and exit
  --json                   print JSON (schema 1) instead of text
  --root DIR               inspect the filesystem under DIR (default /)
  --strict                 exit 1 on warnings too
  --image REF              check an image's labels (from its registry, else the local engine) against
                           this node
  --nfd-features FILE      after the diagnosis, write this node's verdict and facts to FILE as a Node
                           Feature Discovery feature file (labels feature.node.kubernetes.io/imagesmith-*),
                           atomically; exit 3 when FILE cannot be written
  --probe-timeout SECONDS  hard limit for the runtime probe subprocess (default 10)
  --no-probe               do not load libcuda/NVML in a subprocess
"""

MANIFEST_HELP = f"""\
usage: {PROG} manifest [-h] --kind daemonset|job [--image REF] [--namespace NS]
                                  [--features-dir DIR] [--interval DURATION]

Print a DaemonSet (or a Job) that runs `imagesmith doctor --nfd-features DIR/imagesmith` on every GPU node
(nvidia.com/gpu.present=true) with the NVIDIA runtime, so Node Feature Discovery labels each node
feature.node.kubernetes.io/imagesmith-*.

options:
  -h, --help           show this help message and exit
  --kind KIND          daemonset (re-runs every --interval) or job (runs once)
  --image REF          an image with imagesmith installed (default imagesmith:<version>; every
                       curated image has it)
  --namespace NS       the namespace (default imagesmith)
  --features-dir DIR   NFD's features directory on the node
                       (default /etc/kubernetes/node-feature-discovery/features.d)
  --interval DURATION  how often the DaemonSet re-runs the doctor: 10m (default), 90s, 1h

Exit codes: 0 printed, 2 usage error.
"""


class DoctorArgs:
    """The full doctor's options, typed."""

    __slots__ = ("image", "json", "nfd_features", "no_probe", "probe_timeout", "root", "strict")

    def __init__(self, options: dict[str, str | bool]) -> None:
        self.json = bool(options.get("--json"))
        self.strict = bool(options.get("--strict"))
        self.no_probe = bool(options.get("--no-probe"))
        self.root = str(options.get("--root", "/"))
        image = options.get("--image")
        self.image = str(image) if image else None
        nfd = options.get("--nfd-features")
        self.nfd_features = str(nfd) if nfd else None
        if self.image and self.nfd_features:
            raise usage_error(
                "describes this node, not an image: use it without --image", where="--nfd-features"
            )
        raw = str(options.get("--probe-timeout", "10"))
        try:
            self.probe_timeout = float(raw)
        except ValueError:
            raise usage_error("not a number of seconds", where=f"--probe-timeout {raw}") from None
        if not self.probe_timeout > 0:
            raise usage_error("must be a positive number of seconds", where=f"--probe-timeout {raw}")


def parse_doctor(argv: list[str]) -> DoctorArgs | None:
    """The full doctor's options; ``None`` for --help; ``UsageError`` naming the bad argument."""
    parsed = options.parse(
        argv,
        command="doctor",
        flags=frozenset({"--json", "--strict", "--no-probe"}),
        valued=frozenset({"--root", "--image", "--probe-timeout", "--nfd-features"}),
        positionals=0,
    )
    return None if parsed is None else DoctorArgs(parsed[0])


def parse_why(argv: list[str]) -> tuple[str, str, bool] | None:
    """(FILE, --root, --json) from ``why``'s arguments; ``None`` for --help; ``UsageError`` otherwise."""
    parsed = options.parse(
        argv, command="doctor why", flags=frozenset({"--json"}), valued=frozenset({"--root"}), positionals=1
    )
    if parsed is None:
        return None
    given, files = parsed
    if not files:
        raise usage_error("missing FILE (try: imagesmith doctor why --help)", where="why")
    return files[0], str(given.get("--root", "/")), bool(given.get("--json"))


def _run_manifest(argv: list[str]) -> int:
    parsed = options.parse(
        argv,
        command="doctor manifest",
        flags=frozenset(),
        valued=frozenset({"--kind", "--image", "--namespace", "--features-dir", "--interval"}),
        positionals=0,
    )
    if parsed is None:
        sys.stdout.write(MANIFEST_HELP)
        return 0
    given = parsed[0]
    if "--kind" not in given:
        raise usage_error(
            "missing --kind daemonset|job (try: imagesmith doctor manifest --help)", where="manifest"
        )
    from imagesmith.doctor import manifest

    sys.stdout.write(
        manifest.render(
            str(given["--kind"]),
            image=str(given.get("--image", manifest.DEFAULT_IMAGE)),
            namespace=str(given.get("--namespace", manifest.DEFAULT_NAMESPACE)),
            features_dir=str(given.get("--features-dir", manifest.DEFAULT_FEATURES_DIR)),
            interval=str(given.get("--interval", manifest.DEFAULT_INTERVAL)),
        )
    )
    return 0


def _check_root(root: str) -> str:
    if not os.path.isdir(root):
        raise usage_error("not a directory", where=f"--root {root}")
    return os.path.abspath(root) if root != "/" else "/"


def _run_why(argv: list[str]) -> int:
    parsed = parse_why(argv)
    if parsed is None:
        sys.stdout.write(WHY_HELP)
        return 0
    file, root_arg, as_json = parsed
    root = _check_root(root_arg)
    # The container's ld.so is started before anything else is imported and answers while the resolver's
    # modules load and the file is checked: its ~1 ms run comes off the command's wall time.
    from imagesmith.doctor.loader import ldso

    run = ldso.start(root)
    try:
        from imagesmith.doctor.loader import elf, fsroot, loaderconf, resolver, why
        from imagesmith.doctor.loader.jsonout import dumps

        pending = loaderconf.start(root=root, run=run)
        path = file if root == "/" else ("/" + file.lstrip("/"))
        kind = fsroot.classify(root, os.path.abspath(path) if root == "/" else path)
        if kind != "file":
            why_not = {
                "missing": "no such file",
                "loop": "a symbolic link loop (more than 40 links to follow)",
                "directory": "is a directory, not an ELF file",
                "device": "a device file, not an ELF file",
            }.get(kind, "not a regular file, not an ELF file")
            raise usage_error(why_not, where=file)
        config = pending.result()
    finally:
        run.close()
    try:
        res = resolver.why(os.path.abspath(path) if root == "/" else path, config)
    except elf.ElfError as exc:
        raise usage_error(f"not a loadable ELF file: {exc}", where=file) from None
    except OSError as exc:
        raise usage_error(f"cannot read: {exc.strerror}", where=file) from None
    assert res.main is not None
    if as_json:
        print(dumps(why.to_json(res, res.main.path)))
    else:
        print(why.to_text(res, res.main.path))
    missing = [e for e in res.edges if e.via == "not_found" or e.error]
    return 1 if missing else 0


def _run_doctor(argv: list[str]) -> int:
    args = parse_doctor(argv)
    if args is None:
        sys.stdout.write(DOCTOR_HELP)
        return 0
    root = _check_root(args.root)
    from imagesmith.doctor import collect

    gathering = collect.start(root=root, probe=not args.no_probe, probe_timeout=args.probe_timeout)
    try:
        # Imported and loaded while the probe child loads the driver libraries (its fork and ctypes are the
        # longest single wait of the doctor on a GPU node), not after it has answered.
        from imagesmith.doctor import render, rules
        from imagesmith.doctor.loader.jsonout import dumps
        from imagesmith.matrix import knowledge

        kb = knowledge.load()
    except BaseException:
        gathering.cancel()
        raise
    facts = gathering.finish()
    if args.image:
        # The registry is imported only here: the plain doctor and `why` never pay for it.
        from imagesmith.doctor.image_check import check_image, unreadable
        from imagesmith.errors import ImagesmithError
        from imagesmith.registry.facts import image_facts

        try:
            image = image_facts(args.image)
        except ImagesmithError as exc:
            if not args.json:
                raise
            # --json always prints JSON: a script reading it gets the failure as a finding, same exit code.
            print(dumps(unreadable(args.image, exc).to_json()))
            return exc.exit_code
        report = check_image(
            facts,
            {
                "ref": image.ref,
                "labels": image.labels,
                "env": image.env,
                "source": image.source,
                "digest": image.digest,
                "registry_error": image.registry_error,
            },
            kb,
        )
        print(dumps(report.to_json()) if args.json else render.image_text(report))
        return report.exit_code(strict=args.strict)
    result = rules.diagnose(facts, kb)
    print(dumps(render.to_json(facts, result)) if args.json else render.to_text(facts, result))
    if args.nfd_features:
        # Imported only here: the plain doctor does not pay for the NFD writer. The diagnosis is printed
        # first, so a write that fails (exit 3, one line on stderr) still leaves the report.
        from imagesmith.doctor import nfd

        sys.stdout.flush()
        nfd.write(args.nfd_features, facts, result)
    return result.exit_code(strict=args.strict)


def main(argv: list[str]) -> int:
    """Entry point from ``imagesmith/__main__.py``; never raises."""
    try:
        if argv and argv[0] == "why":
            return _run_why(argv[1:])
        if argv and argv[0] == "manifest":
            return _run_manifest(argv[1:])
        return _run_doctor(argv)
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else 0
    except BrokenPipeError:
        return 0
    except KeyboardInterrupt:
        return 130
    except Exception as exc:  # the doctor must never print a traceback in a broken pod
        # Imported here, not at the top: only a run that fails needs the error hierarchy.
        from imagesmith.errors import EXIT_BAD_INPUT, ImagesmithError

        if isinstance(exc, ImagesmithError):
            print(f"imagesmith doctor: error: {exc.one_line()}", file=sys.stderr)
            return exc.exit_code
        print(f"imagesmith doctor: internal error: {type(exc).__name__}: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
