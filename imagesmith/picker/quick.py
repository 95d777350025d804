"""`imagesmith pick` straight from argv, without click (~25 ms of imports against a ~15 ms interpreter start).

Every argument must be one of the command's own flags in a plain form (``--cpus 4``, ``--cpus=4``, ``--spot``);
anything else (help, a typo, a flag click would complete) returns None and goes through click, which owns the
error messages for bad flags. Output and exit codes are click's, byte for byte (tests hold the two to that).
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any

_OWN = {"--json": "as_json"}
_VALUED = {"--format": "fmt", "--catalog": "catalog_dir"}
FORMATS = ("k8s", "karpenter", "sagemaker")


def parse(argv: list[str]) -> dict[str, Any] | None:
    """The options the click command would receive, or None where click must answer."""
    from imagesmith.picker.request import HELP, default

    names = {"--" + n.replace("_", "-"): n for n in HELP}
    options: dict[str, Any] = {n: default(n) for n in HELP}
    options.update(as_json=False, fmt=None, catalog_dir=None)
    args = list(argv)
    while args:
        arg = args.pop(0)
        flag, eq, value = arg.partition("=")
        name = names.get(flag) or _OWN.get(flag) or _VALUED.get(flag)
        if name is None:
            return None
        if isinstance(options.get(name), bool) or name == "as_json":
            if eq:
                return None  # click refuses `--spot=yes`; let it say so
            options[name] = True
            continue
        if not eq:
            if not args or args[0].startswith("--"):
                return None
            value = args.pop(0)
        choices = HELP.get(name, {}).get("choices") or (FORMATS if name == "fmt" else None)
        if choices is not None and value not in choices:
            return None
        if name == "top":
            if not value.lstrip("-").isdigit():
                return None
            options[name] = int(value)
        else:
            options[name] = value
    return options


def main(argv: list[str]) -> int | None:
    options = parse(argv)
    if options is None:
        return None
    import sys

    from imagesmith.errors import ImagesmithError
    from imagesmith.picker.answer import answer

    try:
        text, negative = answer(options)
    except ImagesmithError as exc:
        print(f"imagesmith: error: {exc.one_line()}", file=sys.stderr)
        return exc.exit_code
    if text is not None:
        print(text)
    if negative is not None:
        print(f"imagesmith: error: {negative.one_line()}", file=sys.stderr)
        return negative.exit_code
    return 0
