"""The matrix commands as a user runs them: exit codes, one-line errors, JSON schema."""

from __future__ import annotations

import json
import subprocess
import sys

CHECK = ("matrix", "check")


def test_check_works_json(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        *CHECK, "--framework", "torch==2.4.1+cu124", "--driver", "535.104.05", "--gpu", "H100", "--json"
    )
    assert result.returncode == 0, result.stderr
    payload = json.loads(result.stdout)
    assert payload["schema"] == 1 and payload["verdict"] == "works-with-caveats"
    assert {r["code"] for r in payload["reasons"]} >= {"MINOR_VERSION_COMPATIBLE", "PTX_JIT_CAVEAT"}
    assert payload["inputs"]["framework"] == "torch==2.4.1+cu124"


def test_check_fails_exit_1(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(*CHECK, "--framework", "torch==2.11.0", "--driver", "570.133.20", "--gpu", "A100-80GB")
    assert result.returncode == 1
    assert result.stdout.startswith("fails: torch==2.11.0+cu130")
    assert "DRIVER_TOO_OLD" in result.stdout


def test_unknown_version_exit_2_with_closest_names(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(*CHECK, "--framework", "torch==2.4.7", "--driver", "535.104.05", "--gpu", "H100")
    assert result.returncode == 2
    assert result.stderr.count("\n") == 1 and "Traceback" not in result.stderr
    assert "2.4.1" in result.stderr and "--framework" in result.stderr


def test_unknown_version_json_reason(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        *CHECK, "--framework", "jax==0.7.2+cuda14", "--driver", "580.82.07", "--gpu", "L4", "--json"
    )
    assert result.returncode == 2
    assert json.loads(result.stdout)["reasons"][0]["code"] == "UNKNOWN_VERSION"


def test_unknown_gpu_and_bad_driver(run_cli) -> None:  # type: ignore[no-untyped-def]
    gpu = run_cli(*CHECK, "--framework", "torch==2.11.0", "--driver", "580.82.07", "--gpu", "H1OO")
    assert gpu.returncode == 2 and "--gpu" in gpu.stderr and "H100" in gpu.stderr
    driver = run_cli(*CHECK, "--framework", "torch==2.11.0", "--driver", "latest", "--gpu", "H100")
    assert driver.returncode == 2 and "--driver" in driver.stderr and "'latest'" in driver.stderr


def test_options_newest_first(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli(
        "matrix", "options", "--driver", "535.104.05", "--gpu", "V100", "--framework", "torch", "--json"
    )
    assert result.returncode == 0
    specs = [o["spec"] for o in json.loads(result.stdout)["options"]]
    assert specs[0].startswith("torch==2.14") or specs[0].startswith("torch==2.13")
    assert not any("cu13" in s for s in specs)  # CUDA 13 cannot target Volta, and R535 cannot run it
    versions = [tuple(int(x) for x in s.split("==")[1].split("+")[0].split(".")) for s in specs]
    assert versions == sorted(versions, reverse=True)


def test_version_and_help(run_cli) -> None:  # type: ignore[no-untyped-def]
    assert run_cli("--version").stdout.strip() == "imagesmith, version 0.1.0"
    for args in (
        ["--help"],
        ["matrix", "--help"],
        ["matrix", "check", "--help"],
        ["images", "plan", "--help"],
    ):
        result = run_cli(*args)
        assert result.returncode == 0 and "Usage" in result.stdout, args


def test_version_does_not_import_heavy_modules() -> None:
    code = (
        "import sys; from imagesmith.__main__ import main\n"
        "try:\n    main(['--version'])\nexcept SystemExit:\n    pass\n"
        "print('LOADED=' + ','.join(m for m in ('docker', 'jinja2', 'copier', 'rich', 'yaml') if m in sys.modules))"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert result.stdout.strip().splitlines()[-1] == "LOADED="


def test_unknown_option_is_one_line_exit_2(run_cli) -> None:  # type: ignore[no-untyped-def]
    result = run_cli("matrix", "check", "--frobnicate")
    assert result.returncode == 2 and "Traceback" not in result.stderr and "--frobnicate" in result.stderr
