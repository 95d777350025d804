"""The doctor's answer: findings (code, severity, message, evidence, fix) and the diagnosis around them.

The codes are the matrix's vocabulary (``imagesmith.matrix.codes``): one set for the doctor, the matrix and
the fleet. Findings are ordered by severity, then by the catalogue's order (visibility, driver, runtime,
kernels, libraries), so a report reads from the first thing to fix.
"""

from __future__ import annotations

from imagesmith.contract.record import field, record

SEVERITIES = ("error", "warning", "info")


@record
class Finding:
    code: str
    severity: str  # "error" | "warning" | "info"
    message: str
    evidence: tuple[str, ...]
    fix: str

    def to_json(self) -> dict[str, object]:
        return {
            "code": self.code,
            "severity": self.severity,
            "message": self.message,
            "evidence": list(self.evidence),
            "fix": self.fix,
        }


@record
class Diagnosis:
    findings: tuple[Finding, ...]
    driver: dict[str, object] = field(default_factory=dict)
    subject: dict[str, object] = field(default_factory=dict)

    @property
    def status(self) -> str:
        severities = {f.severity for f in self.findings}
        return "error" if "error" in severities else "warning" if "warning" in severities else "ok"

    def exit_code(self, *, strict: bool = False) -> int:
        if self.status == "error" or (strict and self.status == "warning"):
            return 1
        return 0

    def to_json(self) -> dict[str, object]:
        return {
            "schema": 1,
            "status": self.status,
            **self.subject,
            "findings": [f.to_json() for f in self.findings],
            "driver": self.driver,
        }


def ordered(findings: list[Finding]) -> tuple[Finding, ...]:
    from imagesmith.matrix.codes import ORDER

    return tuple(
        sorted(
            findings,
            key=lambda f: (
                SEVERITIES.index(f.severity) if f.severity in SEVERITIES else 3,
                ORDER.get(f.code, len(ORDER)),
            ),
        )
    )


def text(value: object) -> str:
    """Evidence never shows Python's ``None``: an unknown value reads as '?'."""
    return "?" if value is None or value == "" else str(value)
