"""What `imagesmith pick` prints for a set of options, shared by the click command and the quick path."""

from __future__ import annotations

from imagesmith.contract.record import replace
from imagesmith.errors import NegativeAnswer
from imagesmith.picker.request import from_options

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from typing import Any


def answer(options: dict[str, Any]) -> tuple[str | None, NegativeAnswer | None]:
    """The text to print (None: nothing) and, when no instance fits, the negative answer to raise after it."""
    from imagesmith.picker.api import pick as run_pick

    fmt, as_json = options.get("fmt"), options.get("as_json", False)
    request = from_options(options)
    if fmt == "sagemaker" and request.service is None:
        request = replace(request, service="sagemaker")
    if fmt == "karpenter" and request.cloud is None and request.service is None:
        request = replace(request, cloud="aws")  # Karpenter provisions EC2: the format says where to look
    result = run_pick(request, catalog=options.get("catalog_dir"))
    if fmt == "karpenter" and request.region is None and result.choice is not None:
        # A NodePool serves one cluster, in one region: the alternatives it may launch come from the choice's.
        result = run_pick(replace(request, region=result.choice.region), catalog=options.get("catalog_dir"))
    text: str | None = None
    if as_json:
        import json

        text = json.dumps(result.to_json(), indent=1)
    elif fmt is not None and result.choice is not None:
        from imagesmith.picker.formats import render

        text = render(fmt, result)
    elif fmt is None:
        from imagesmith.picker.render import pick_text

        text = pick_text(result)
    if result.choice is not None:
        return text, None
    closest = ", ".join(
        f"{r.row.instance_type} ({'; '.join(str(f) for f in r.failed)})" for r in result.rejected[:3]
    )
    return text, NegativeAnswer(
        f"no instance in the catalog of {result.catalog_date} fits",
        hint=f"closest: {closest}" if closest else "the scope (--cloud/--service/--region) holds no rows",
    )
