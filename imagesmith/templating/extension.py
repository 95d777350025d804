"""The copier Jinja extension: curated base images and the instance picker inside ``copier.yml``.

Loaded by copier through ``_jinja_extensions`` (so ``copier copy/update`` need ``--trust``). Every
global returns plain strings or JSON text, which copier parses as YAML for ``choices``. Bad answers
surface as one line through copier's ``UserMessageError`` instead of a Jinja traceback.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from functools import cache
from typing import Any, TypeVar

from jinja2 import Environment
from jinja2.ext import Extension

from imagesmith.errors import ImagesmithError
from imagesmith.templating import images, resources

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


@cache
def _choices() -> tuple[images.Curated, ...]:
    # One copier run renders choices and defaults many times; the plan is fixed for the process.
    return tuple(images.load_choices())


def _optional(value: object) -> str | None:
    # Answers not given yet arrive as jinja Undefined, which the templates turn into "" with default('').
    text = "" if value is None else str(value).strip()
    return text or None


@_one_line
def image_choices(
    framework: object = None, python: object = None, accelerator: object = "gpu", keep: object = ""
) -> str:
    """JSON list of curated tags for the ``base_image`` question's ``choices``."""
    tags = images.image_tags(
        _choices(),
        framework=_optional(framework),
        python=_optional(python),
        accelerator=str(accelerator or "gpu"),
        keep=str(keep or ""),
    )
    return json.dumps(tags)


@_one_line
def default_image(framework: object = None, python: object = None, accelerator: object = "gpu") -> str:
    """The plan's default tag for these answers (``base_image``'s ``default``)."""
    return images.default_tag(
        _choices(),
        framework=_optional(framework),
        python=_optional(python),
        accelerator=str(accelerator or "gpu"),
    )


@_one_line
def python_choices(framework: object = None) -> str:
    """JSON list of Python versions with a curated image for the framework, newest first."""
    return json.dumps(images.python_versions(_choices(), framework=_optional(framework)))


@_one_line
def default_python(framework: object = None) -> str:
    versions = images.python_versions(_choices(), framework=_optional(framework))
    return versions[0] if versions else "3.12"


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
    res = resources.resources_from_answers(
        cpus=cpus,
        memory_gb=memory_gb,
        gpus=gpus,
        gpu_memory_gb=gpu_memory_gb,
        gpu_model=gpu_model,
        cloud=cloud,
    )
    return _pick_cached(res)


@cache
def _pick_cached(res: resources.Resources) -> str:
    return resources.instance_type(res)


def resource_error(value: object, name: str, minimum: int = 0) -> str:
    """Validator text for a count question: "" when valid, the reason otherwise (copier shows it)."""
    try:
        resources.parse_count(value, name=name, minimum=minimum)
    except ImagesmithError as exc:
        return exc.one_line()
    return ""


class ImagesmithExtension(Extension):
    """Registers ``imagesmith_*`` globals for ``copier.yml`` and the templates."""

    def __init__(self, environment: Environment) -> None:
        super().__init__(environment)
        environment.globals.update(
            imagesmith_image_choices=image_choices,
            imagesmith_default_image=default_image,
            imagesmith_python_choices=python_choices,
            imagesmith_default_python=default_python,
            imagesmith_instance_type=instance_type,
            imagesmith_resource_error=resource_error,
        )
