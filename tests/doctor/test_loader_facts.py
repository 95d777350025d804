"""What ``doctor why`` learns from the container's ``ld.so``: one run of ``--list-diagnostics`` must say what the
two runs (``--list-diagnostics`` and ``--help``) said, and a loader that cannot say it all gets ``--help`` too."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

from imagesmith.doctor.loader import ldso, loaderconf

LOADER = "/lib64/ld-linux-x86-64.so.2"


def _run(flag: str) -> str:
    return ldso.LoaderQuery(LOADER, flag).output()


def test_diagnostics_alone_say_what_both_outputs_say() -> None:
    diag, helptext = _run("--list-diagnostics"), _run("--help")
    assert "dl_hwcaps_subdirs=" in diag and "Subdirectories of glibc-hwcaps" in helptext
    alone = loaderconf._parse_diagnostics(diag)
    assert alone is not None
    assert alone == loaderconf._parse(diag, helptext)
    assert alone["system_dirs"] and alone["hwcaps"]  # what the resolver searches, from the real loader


def test_a_loader_without_list_diagnostics_is_asked_for_help(tmp_path: Path) -> None:
    """glibc < 2.33 has no --list-diagnostics: the facts then come from --help (a stand-in loader that refuses
    the option the way an old ld.so does, and answers --help with the real loader's text)."""
    old = tmp_path / "ld-old.so"
    old.write_text(
        "#!/bin/sh\n"
        f'[ "$1" = --help ] && exec {LOADER} --help\n'
        "echo \"ld.so: unrecognized option '$1'\" >&2\n"
        "exit 127\n"
    )
    old.chmod(0o755)
    facts = loaderconf.loader_facts(str(old))
    assert facts == loaderconf._parse("", _run("--help"))
    assert facts["system_dirs"] == loaderconf._parse_diagnostics(_run("--list-diagnostics"))["system_dirs"]  # type: ignore[index]


def _diag(machine: str, version: str, hwcap: int, important: int, platform: str | None) -> str:
    lines = [
        'dl_dst_lib="lib/aarch64-linux-gnu"',
        f"dl_hwcap={hwcap:#x}",
        f"dl_hwcap_important={important:#x}",
        'dl_hwcaps_subdirs=""',
        "dl_hwcaps_subdirs_active=0x0",
        f'dl_platform="{platform}"' if platform else "dl_platform=0x0",
        'path.system_dirs[0x0]="/lib/aarch64-linux-gnu/"',
        f'version.version="{version}"',
        f'uname.machine="{machine}"',
    ]
    return "\n".join(lines) + "\n"


def test_legacy_names_of_another_machine_are_left_to_help() -> None:
    """The legacy hwcap names are a per-machine table; only x86-64's is known here, so an aarch64 glibc 2.36 with
    searched legacy hwcaps is asked for --help rather than guessed."""
    assert loaderconf._parse_diagnostics(_diag("aarch64", "2.36", 0x3, 0x2, "aarch64")) is None
    # Nothing legacy to name (no important bit set): the diagnostics say it all.
    facts = loaderconf._parse_diagnostics(_diag("aarch64", "2.36", 0x3, 0x0, None))
    assert facts is not None and facts["legacy"] == ("tls",)
    # glibc 2.37 removed the legacy subdirectories: nothing to ask.
    newer = loaderconf._parse_diagnostics(_diag("aarch64", "2.39", 0x3, 0x2, "aarch64"))
    assert newer is not None and "legacy" not in newer and newer["version"] == "2.39"


def test_hwcaps_follow_the_active_mask_bit_by_bit() -> None:
    text = 'dl_hwcaps_subdirs="x86-64-v4:x86-64-v3:x86-64-v2"\ndl_hwcaps_subdirs_active=0x6\nversion.version="2.39"\n'
    facts = loaderconf._parse_diagnostics(text)
    assert facts is not None and facts["hwcaps"] == ("x86-64-v3", "x86-64-v2")  # bit 0 is the first name


def test_a_loader_that_hangs_is_killed_and_reaped(tmp_path: Path) -> None:
    hang = tmp_path / "ld-hang.so"
    hang.write_text("#!/bin/sh\nexec sleep 30\n")
    hang.chmod(0o755)
    query = ldso.LoaderQuery(str(hang), "--list-diagnostics")
    pid = query._pid
    assert pid is not None and query.output(timeout=0.3) == ""
    with pytest.raises(ChildProcessError):
        os.waitpid(pid, os.WNOHANG)  # killed and reaped: no child left behind
