"""What ``imagesmith images plan`` prints (text or schema-1 JSON), without click: the click command and the
fast path in ``imagesmith.__main__`` (which skips click's ~19 ms of imports) print the same thing."""

from __future__ import annotations

from imagesmith.images.plan import Plan, make_plan
from imagesmith.images.policy import load_policy

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    import os
    from typing import Any


def plan_from(policy: str | os.PathLike[str] | None) -> Plan:
    from imagesmith.matrix import knowledge

    kb = knowledge.load()
    return make_plan(kb, load_policy(policy, kb))


def payload(plan: Plan) -> dict[str, Any]:
    return {
        "schema": 1,
        "policy": plan.policy.source,
        "images": [
            {
                "name": i.name,
                "tag": i.tag,
                "aliases": list(i.aliases),
                "parent": i.parent,
                "base": i.base.image,
                "variant": i.variant,
                "framework": i.framework_spec,
                "cuda": str(i.cuda) if i.cuda else None,
                "cudnn": str(i.cudnn) if i.cudnn else None,
                "python": i.python,
                "min_driver": str(i.min_driver) if i.min_driver else None,
                "full_driver": str(i.full_driver) if i.full_driver else None,
                "sm": i.sm or None,
                "nodes": list(i.nodes),
            }
            for i in plan.images
        ],
        "coverage": [{"line": c[0], "node": c[1], "build": c[2], "verdict": c[3]} for c in plan.coverage],
        "left_out": [{"what": d.subject, "why": d.reason} for d in plan.left_out],
        "uncovered": [{"what": d.subject, "why": d.reason} for d in plan.uncovered],
    }


def uncovered_lines(plan: Plan) -> list[str]:
    if not plan.uncovered:
        return []
    return ["NOT COVERED:", *(f"  {d.subject}: {d.reason}" for d in plan.uncovered)]


def depth(plan: Plan, name: str) -> int:
    levels = 0
    image = plan.image(name)
    while image.parent:
        levels += 1
        image = plan.image(image.parent)
    return levels


def text(plan: Plan, *, explain: bool) -> str:
    lines = [
        f"{len(plan.images)} images from {plan.policy.source} for {len(plan.policy.fleet)} fleet node types:"
    ]
    for image in plan.images:
        indent = "  " * (1 + depth(plan, image.name))
        facts = [image.variant]
        if image.framework:
            facts += [f"CUDA {image.cuda}", f"cuDNN {image.cudnn or '-'}", f"driver >= {image.min_driver}"]
        facts.append(f"py{image.python}")
        lines.append(f"{indent}{image.tag}  ({', '.join(facts)})")
        if image.framework and image.variant == "runtime":
            lines.append(f"{indent}  sm: {image.sm or 'none'}; runs on: {', '.join(image.nodes)}")
    lines.append("coverage:")
    lines += [
        f"  {line:<22} {node:<16} {build:<28} {verdict}" for line, node, build, verdict in plan.coverage
    ]
    lines += uncovered_lines(plan)
    if explain:
        lines.append("left out:")
        lines += [f"  {d.subject}: {d.reason}" for d in plan.left_out] or ["  nothing"]
    return "\n".join(lines)


def render(policy: str | os.PathLike[str] | None, *, as_json: bool, explain: bool) -> tuple[str, int]:
    """The output and the exit code (1 when a fleet node is left without an image)."""
    from imagesmith.errors import EXIT_NEGATIVE, EXIT_OK

    plan = plan_from(policy)
    if as_json:
        import json  # only for --json

        out = json.dumps(payload(plan), indent=2)
    else:
        out = text(plan, explain=explain)
    return out, EXIT_NEGATIVE if plan.uncovered else EXIT_OK


def quick(argv: list[str]) -> int | None:
    """``images plan`` straight from argv when every argument is one of its own flags; None sends
    anything else (help, a typo) to click."""
    import sys

    from imagesmith.errors import ImagesmithError

    policy: str | None = None
    flags = {"as_json": False, "explain": False}
    args = list(argv)
    while args:
        arg = args.pop(0)
        if arg in ("--json", "--explain"):
            flags["as_json" if arg == "--json" else "explain"] = True
            continue
        flag, eq, value = arg.partition("=")
        if flag != "--policy" or (not eq and not args):
            return None
        policy = value if eq else args.pop(0)
        if not policy or policy.startswith("-"):
            return None
    try:
        out, code = render(policy, **flags)
    except ImagesmithError as exc:
        print(f"imagesmith: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    print(out)
    return code
