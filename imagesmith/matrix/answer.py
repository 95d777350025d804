"""The answer of ``imagesmith matrix check``, without click: the click command and the fast path in
``imagesmith.__main__`` (which skips click's ~16 ms of imports) print the same text."""

from __future__ import annotations

from imagesmith.contract.record import record
from imagesmith.errors import UnknownName, UsageError
from imagesmith.matrix import knowledge, rules, spec
from imagesmith.matrix.codes import Code
from imagesmith.matrix.versions import NvVersion

TYPE_CHECKING = False  # typing costs ~10 ms here; mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any


@record
class CheckAnswer:
    text: str  # what to print: the verdict lines, or the schema-1 JSON
    ok: bool


def parse_driver(value: str) -> NvVersion:
    """A ``--driver`` value, or the one-line usage error naming the flag."""
    try:
        return NvVersion.parse(value)
    except ValueError:
        raise UsageError(f"not a driver version: {value!r} (like 535.104.05)", where="--driver") from None


def check(
    *, framework_spec: str, driver: str, gpu: str, compat_package: str | None, as_json: bool
) -> CheckAnswer:
    """Raises the usage errors (one line each); with ``as_json`` an unknown name is printed as a JSON
    ``unknown`` verdict first, then raised."""
    inputs: dict[str, Any] = {
        "framework": framework_spec,
        "driver": driver,
        "gpu": gpu,
        "compat_package": compat_package,
    }
    kb = knowledge.load()
    try:
        drv = parse_driver(driver)
        resolved = spec.resolve(kb, framework_spec)
        node_gpu = kb.find_gpu(gpu)
        compat = kb.find_compat_package(compat_package).cuda if compat_package else None
    except UnknownName as exc:
        if as_json:
            import json

            reason = {"code": Code.UNKNOWN_VERSION, "message": exc.one_line()}
            print(
                json.dumps(
                    {"schema": 1, "verdict": "unknown", "reasons": [reason], "inputs": inputs}, indent=2
                )
            )
        raise
    verdict = rules.evaluate(
        kb,
        cuda=resolved.cuda,
        sass=resolved.sass,
        ptx=resolved.ptx,
        driver=drv,
        gpu=node_gpu,
        compat_cuda=compat,
    )
    inputs["resolved"] = {
        "build": resolved.spec,
        "pypi_default": resolved.is_pypi_default,
        "cuda": str(resolved.cuda),
        "cudnn": str(resolved.cudnn) if resolved.cudnn else None,
        "arch": resolved.build.sm_list,
        "gpu": node_gpu.name,
        "capability": str(node_gpu.capability),
        "driver_cuda": str(kb.driver_max_cuda(drv) or ""),
        "sources": list(resolved.build.provenance.source),
        "confidence": resolved.build.provenance.confidence,
    }
    if as_json:
        import json  # only for --json: json imports re (~6 ms)

        payload = {
            "schema": 1,
            "verdict": verdict.verdict,
            "reasons": [r.to_json() for r in verdict.reasons],
            "inputs": inputs,
        }
        return CheckAnswer(text=json.dumps(payload, indent=2), ok=verdict.ok)
    lines = [
        f"{verdict.verdict}: {resolved.spec} (CUDA {resolved.cuda}) on {node_gpu.name} (sm {node_gpu.capability}) "
        f"with driver {drv}"
    ]
    lines += [f"  [{r.code}] {r.message}" for r in verdict.reasons]
    lines.append(
        f"  data: {resolved.build.provenance.where}, confidence {resolved.build.provenance.confidence}"
    )
    return CheckAnswer(text="\n".join(lines), ok=verdict.ok)


FLAGS = {
    "--framework": "framework_spec",
    "--driver": "driver",
    "--gpu": "gpu",
    "--compat-package": "compat_package",
}


def quick(argv: list[str]) -> int | None:
    """``matrix check`` straight from argv when every argument is one of its own flags (``--x v`` or
    ``--x=v``, ``--json``); None sends anything else (help, a typo, a missing flag) to click."""
    import sys

    from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK, ImagesmithError

    values: dict[str, Any] = {"compat_package": None, "as_json": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg == "--json":
            values["as_json"] = True
            continue
        flag, eq, value = arg.partition("=")
        if flag not in FLAGS or (not eq and not args):
            return None
        values[FLAGS[flag]] = value if eq else args.pop(0)
    if not all(key in values for key in ("framework_spec", "driver", "gpu")):
        return None
    try:
        result = check(**values)
    except ImagesmithError as exc:
        print(f"imagesmith: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(result.text)
    return EXIT_OK if result.ok else EXIT_NEGATIVE
