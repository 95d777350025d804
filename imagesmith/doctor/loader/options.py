"""The doctor's command-line options, parsed by hand.

argparse (with gettext, locale, shutil and re behind it) costs ~15 ms to import and set up: more than a
third of ``doctor why``'s 40 ms budget. The doctor has seven options and one positional, so a table is
enough: ``--flag``, ``--opt VALUE`` / ``--opt=VALUE``, ``--`` ends the options, ``-h``/``--help``.
"""

from __future__ import annotations

TYPE_CHECKING = False  # mypy treats this name as True
if TYPE_CHECKING:
    from imagesmith.errors import UsageError


def usage_error(message: str, *, where: str) -> UsageError:
    """A ``UsageError`` to raise. ``imagesmith.errors`` is imported only when there is one to report: a run
    that succeeds (``why`` in a pod, every few seconds on a fleet) does not pay for the hierarchy."""
    from imagesmith.errors import UsageError

    return UsageError(message, where=where)


def parse(
    argv: list[str],
    *,
    command: str,
    flags: frozenset[str],
    valued: frozenset[str],
    positionals: int,
) -> tuple[dict[str, str | bool], list[str]] | None:
    """(options given, positionals); ``None`` when help was asked for; ``UsageError`` naming the argument."""
    options: dict[str, str | bool] = {}
    found: list[str] = []
    rest = list(argv)
    only_positionals = False
    while rest:
        arg = rest.pop(0)
        if only_positionals or arg == "-" or not arg.startswith("-"):
            found.append(arg)
        elif arg == "--":
            only_positionals = True
        elif arg in ("-h", "--help"):
            return None
        elif arg in flags:
            options[arg] = True
        elif arg.partition("=")[0] in valued:
            name, eq, value = arg.partition("=")
            if not eq:
                if not rest:
                    raise usage_error("expected one argument", where=name)
                value = rest.pop(0)
            if not value:
                raise usage_error("must not be empty", where=name)
            options[name] = value
        else:
            raise usage_error(f"no such option (try: imagesmith {command} --help)", where=f"{command} {arg}")
        if len(found) > positionals:
            what = "no arguments" if positionals == 0 else "one FILE at a time"
            raise usage_error(f"unexpected extra argument ({what})", where=f"{command} {found[-1]}")
    return options, found
