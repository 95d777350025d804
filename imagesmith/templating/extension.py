"""The copier Jinja extension: curated base images and the instance picker inside ``copier.yml``.

Loaded by copier through ``_jinja_extensions`` (so ``copier copy/update`` need ``--trust``). Every
global returns plain strings or JSON text, which copier parses as YAML for ``choices``. Bad answers
surface as one line through copier's ``UserMessageError`` instead of a Jinja traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Mapping
from functools import cache
from pathlib import Path
from typing import Any, TypeVar

from jinja2 import Environment, Undefined, pass_context
from jinja2.ext import Extension
from jinja2.runtime import Context

from imagesmith.errors import ImagesmithError
from imagesmith.images import catalog
from imagesmith.images.catalog import Catalog
from imagesmith.templating import images, pins, resources

T = TypeVar("T")


def _one_line(func: Callable[..., T]) -> Callable[..., T]:
    """Turn imagesmith errors into copier's user-facing error so the CLI prints one line."""

    def wrapper(*args: Any, **kwargs: Any) -> T:
        try:
            return func(*args, **kwargs)
        except ImagesmithError as exc:
            from copier.errors import UserMessageError

            raise UserMessageError(f"imagesmith: {exc.one_line()}") from exc

    wrapper.__name__ = func.__name__
    wrapper.__doc__ = func.__doc__
    return wrapper


def _conf(ctx: Context) -> Mapping[str, Any]:
    """copier's ``_copier_conf`` (a lazy mapping); empty outside copier, e.g. in a plain Jinja render."""
    conf = ctx.get("_copier_conf")
    return conf if isinstance(conf, Mapping) else {}


def _conf_value(ctx: Context, key: str) -> Any:
    return _conf(ctx).get(key)


def template_source(ctx: Context) -> Path | None:
    """The checkout of the template version being rendered (copier clones each version it renders)."""
    src = _conf_value(ctx, "src_path")
    return Path(str(src)) if src else None


def _catalog(ctx: Context) -> Catalog:
    source = template_source(ctx)
    # The version-skew check, on every copy and on the render an update makes in the project itself; the
    # old and new template versions an update replays into temporary folders are not checked (the old one
    # was made for the imagesmith the project last used, and the new one is checked in the project).
    if not _replaying_update(ctx):
        catalog.check_template_pin(source)
    return catalog.for_template(source)


def _answer(ctx: Context, name: str, value: object = None) -> str:
    """The answer to ``name`` copier holds so far ("" when none): given on the command line or recorded."""
    text = _optional(value) or _optional(ctx.get(name))
    return text or ""


def _is_recorded(ctx: Context, name: str, value: str) -> bool:
    """Whether ``value`` is the project's recorded answer rather than one the user just gave (``-d``)."""
    data = _conf_value(ctx, "data")
    given = data.get(name) if isinstance(data, Mapping) else None
    if given is None or str(given).strip() != value:
        return True  # copier read it from the project's answers file
    return _replaying_update(ctx)


def _replaying_update(ctx: Context) -> bool:
    """``copier update`` renders the old and the new template version into empty temporary folders,
    passing every recorded answer as data; the project itself (which has an answers file) is the only
    destination where data can be something the user just typed."""
    if _copier_operation() != "update":
        return False
    dst, answers_file = _conf_value(ctx, "dst_path"), _conf_value(ctx, "answers_file")
    if dst is None or answers_file is None:
        return False
    return not (Path(str(dst)) / str(answers_file)).exists()


def _copier_operation() -> str | None:
    # copier keeps the running operation ("copy" or "update", also through an update's nested copies)
    # in a context variable it exposes to tasks as `_copier_operation` but not to questions.
    try:
        from copier._main import _operation
    except ImportError:
        return None
    operation = _operation.get(None)
    return str(operation) if operation else None


def _optional(value: object) -> str | None:
    # Answers not given yet arrive as jinja Undefined, which the templates turn into "" with default('').
    if value is None or isinstance(value, Undefined):
        return None
    text = str(value).strip()
    return text or None


@pass_context
@_one_line
def image_choices(
    ctx: Context,
    framework: object = None,
    python: object = None,
    accelerator: object = "gpu",
    keep: object = "",
) -> str:
    """JSON list of curated tags for the ``base_image`` question's ``choices``.

    The answer already held (``keep``) is checked here because copier checks a ``-d`` value against
    the choices with a plain ValueError, which its CLI prints as a traceback.
    """
    cat = _catalog(ctx)
    value = _answer(ctx, "base_image", keep)
    images.check_image(cat, value, recorded=bool(value) and _is_recorded(ctx, "base_image", value))
    tags = images.image_tags(
        cat.choices,
        framework=_optional(framework),
        python=_optional(python),
        accelerator=str(accelerator or "gpu"),
        keep=value,
    )
    return json.dumps(tags)


@pass_context
@_one_line
def default_image(
    ctx: Context, framework: object = None, python: object = None, accelerator: object = "gpu"
) -> str:
    """The default tag for these answers: the framework's runtime image on the most fleet nodes."""
    return images.default_tag(
        _catalog(ctx).choices,
        framework=_optional(framework),
        python=_optional(python),
        accelerator=str(accelerator or "gpu"),
    )


@pass_context
@_one_line
def image_help(
    ctx: Context, framework: object = None, python: object = None, accelerator: object = "gpu"
) -> str:
    """The ``base_image`` question's help: the plan it comes from and why the default is the default."""
    return images.explain_default(
        _catalog(ctx),
        framework=_optional(framework),
        python=_optional(python),
        accelerator=str(accelerator or "gpu"),
    )


@pass_context
@_one_line
def python_choices(ctx: Context, framework: object = None) -> str:
    """JSON list of Python versions with a curated image for the framework, newest first."""
    cat = _catalog(ctx)
    value = _answer(ctx, "python_version")
    images.check_python(cat, value, recorded=bool(value) and _is_recorded(ctx, "python_version", value))
    versions = images.python_versions(cat.choices, framework=_optional(framework))
    if value and value not in versions:
        versions.append(value)
    return json.dumps(versions)


@pass_context
@_one_line
def default_python(ctx: Context, framework: object = None) -> str:
    versions = images.python_versions(_catalog(ctx).choices, framework=_optional(framework))
    return versions[0] if versions else "3.12"


def _placement(
    instance: object,
    cpus: object,
    memory_gb: object,
    gpus: object = 0,
    gpu_memory_gb: object = 0,
    cloud: object = "aws",
) -> resources.Placement:
    """The placement for the resource answers; ``instance`` is the instance_type answer (auto, a pin or "")."""
    res = resources.resources_from_answers(
        cpus=cpus, memory_gb=memory_gb, gpus=gpus, gpu_memory_gb=gpu_memory_gb, cloud=cloud
    )
    return _place_cached(res, resources.AUTO if instance is None else str(instance).strip())


@_one_line
def instance_type(
    cpus: object,
    memory_gb: object,
    gpus: object = 0,
    gpu_memory_gb: object = 0,
    gpu_model: object = "",
    cloud: object = "aws",
) -> str:
    """Cheapest instance type that fits the resource answers ("" when none fits)."""
    del gpu_model  # kept for templates written against the older signature
    return _placement(resources.AUTO, cpus, memory_gb, gpus, gpu_memory_gb, cloud).instance_type


# The three views of one placement copier.yml asks for, each called with _placement's arguments:
# - the node selector's instance type (picked again when the answer is auto, else the pin);
# - one sentence for the manifests' header: what was picked (or pinned) for what, and what it offers pods;
# - for copier's after-copy/after-update message, a warning when a pinned type no longer fits ("" else). The
#   message is rendered once with the final answers; `copier update` renders the files themselves (old and new
#   version) quietly, so a warning printed while rendering them would never be seen.
node_instance = _one_line(lambda *a, **k: _placement(*a, **k).instance_type)
instance_note = _one_line(lambda *a, **k: _placement(*a, **k).note)
pin_warning = _one_line(
    lambda *a, **k: f"Warning: {p.note}" if (p := _placement(*a, **k)).pinned and not p.fits else ""
)


@cache
def _place_cached(res: resources.Resources, instance: str) -> resources.Placement:
    return resources.place(res, instance)


def resource_error(value: object, name: str, minimum: int = 0) -> str:
    """Validator text for a count question: "" when valid, the reason otherwise (copier shows it)."""
    try:
        resources.parse_count(value, name=name, minimum=minimum)
    except ImagesmithError as exc:
        return exc.one_line()
    return ""


@pass_context
def gpu_affinity(ctx: Context, base_image: object) -> str:
    """Required node affinity on GPU Feature Discovery's labels for the curated image: a node whose driver branch
    is at least the image's floor and whose compute capability its SASS runs on ("" for a CPU image or one
    that promises neither). Written from the image's own labels in the template's plan."""
    from imagesmith.contract.nodelabels import affinity_yaml
    from imagesmith.contract.nodelabels import gpu_affinity as terms
    from imagesmith.contract.sm import ptx_of, sass_of
    from imagesmith.matrix.versions import Capability, NvVersion

    choice = _catalog(ctx).known().get(_optional(base_image) or "")
    if choice is None or choice.cuda is None:
        return ""

    def caps(tokens: tuple[str, ...]) -> list[tuple[int, int]]:
        return [(c.major, c.minor) for c in Capability.parse_all(tokens)[0]]

    floor, full = NvVersion.leading(choice.min_driver), NvVersion.leading(choice.full_driver)
    return affinity_yaml(
        terms(
            driver_major=floor.major if floor else None,
            sass=caps(sass_of(choice.sm)),
            ptx=caps(ptx_of(choice.sm)),
            ptx_driver_major=full.major if full else None,
        )
    )


@pass_context
def dev_base_image(ctx: Context, base_image: object) -> str:
    """The curated image the Dockerfile's ``dev`` stage builds on: the devel twin of ``base_image`` in the
    template's plan (the same framework build with the toolchain: compilers, the CUDA compiler tools, headers), or "" when the plan
    has none (the plain base image, or a recorded tag a newer plan retired): the dev stage then builds on the
    production stage."""
    choice = _catalog(ctx).dev_base(_optional(base_image) or "")
    return choice.tag if choice else ""


@pass_context
def constraints(ctx: Context, base_image: object) -> str:
    """The curated image's pins as a constraints file, from the template repository's locks."""
    return pins.constraints_for(template_source(ctx), _optional(base_image) or "")


def pinned(base_image: object, pin: object = False) -> pins.DigestAnswer:
    """``tag@sha256:...`` for the FROM line when ``pin`` (resolved in the registry now), with the reason
    when it cannot be; the tag alone when not pinning."""
    ref = _optional(base_image) or ""
    if str(pin).lower() not in ("true", "1", "yes"):
        return pins.DigestAnswer(ref=ref, digest=None, why_not=None)
    return pins.resolve_digest(ref)


class ImagesmithExtension(Extension):
    """Registers ``imagesmith_*`` globals for ``copier.yml`` and the templates."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(
            imagesmith_image_choices=image_choices,
            imagesmith_default_image=default_image,
            imagesmith_image_help=image_help,
            imagesmith_python_choices=python_choices,
            imagesmith_default_python=default_python,
            imagesmith_instance_type=instance_type,
            imagesmith_node_instance=node_instance,
            imagesmith_instance_note=instance_note,
            imagesmith_pin_warning=pin_warning,
            imagesmith_resource_error=resource_error,
            imagesmith_constraints=constraints,
            imagesmith_gpu_affinity=gpu_affinity,
            imagesmith_pinned=pinned,
            imagesmith_dev_base_image=dev_base_image,
        )
