"""``make audit``: pip-audit on requirements.lock and bandit on the service code.

Accepted findings, each with its reason, live in ``audit.toml``; anything else fails,
and so does an accepted finding that no longer occurs.

pip-audit needs an advisory service: PyPI's per-release JSON API
(``/pypi/<name>/<version>/json``, the default) or OSV (``api.osv.dev``). When neither
answers, the audit FAILS and says so: an audit that could not look is not a pass.
``--advisories-optional`` (or ``AUDIT_ADVISORIES=optional``) turns that one case into a
loud warning, for networks known to block the advisory services; vulnerabilities that
were found always fail.

Usage: ``python -m tests.quality.audit [--advisories-optional] [--only pip-audit|bandit]``
"""

from __future__ import annotations

import argparse
import json
import os
import re
import subprocess
import sys
import tomllib
import urllib.error
import urllib.request
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
BIN = Path(sys.executable).parent
CONFIG = ROOT / "audit.toml"
LOCK = ROOT / "requirements.lock"
BANDIT_TARGETS = [
    "core",
    "clients",
    "identity",
    "licensing",
    "verification",
    "seed",
    "card_app",
    "app.py",
]

PYPI = "https://pypi.org/pypi"
OSV = "https://api.osv.dev/v1/query"


def _status(url: str, data: bytes | None = None) -> int | None:
    request = urllib.request.Request(url, data=data, method="POST" if data else "GET")  # noqa: S310
    if data:
        request.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(request, timeout=15) as response:  # noqa: S310
            return response.status
    except urllib.error.HTTPError as error:
        return error.code
    except OSError:
        return None


def _first_pin() -> tuple[str, str]:
    for line in LOCK.read_text().splitlines():
        match = re.match(r"^([A-Za-z0-9_.-]+)==([^\s;#]+)", line.strip())
        if match:
            return match.group(1), match.group(2)
    raise SystemExit("requirements.lock has no pinned requirement")


def advisory_service() -> tuple[str | None, str]:
    """('pypi' | 'osv' | None, explanation)."""
    name, version = _first_pin()
    release = _status(f"{PYPI}/{name}/{version}/json")
    if release == 200:
        return "pypi", "PyPI per-release JSON API"
    osv_query = json.dumps({"package": {"name": name, "ecosystem": "PyPI"}, "version": version})
    if _status(OSV, osv_query.encode()) == 200:
        return "osv", "OSV"
    project = _status(f"{PYPI}/{name}/json")
    why = (
        f"PyPI answers {PYPI}/{name}/json with {project} but the per-release "
        f"{PYPI}/{name}/{version}/json (the one that carries vulnerability data) with {release}"
        if project == 200
        else f"PyPI's JSON API is unreachable ({release})"
    )
    return None, f"{why}, and OSV ({OSV}) is unreachable"


def run_pip_audit(config: dict, advisories_optional: bool) -> bool:
    print("== pip-audit (requirements.lock)", flush=True)
    service, detail = advisory_service()
    if service is None:
        banner = "CANNOT AUDIT DEPENDENCIES: no vulnerability advisory service is reachable"
        print(f"!! {banner}\n!! {detail}.", flush=True)
        if advisories_optional:
            print("!! --advisories-optional: reported, not failed. Dependencies are NOT audited.")
            return True
        print(
            "!! Failing: an audit that could not look is not a pass. Run it where PyPI's "
            "JSON API or api.osv.dev is reachable, or pass --advisories-optional."
        )
        return False
    args = [
        str(BIN / "pip-audit"),
        "--strict",
        "--progress-spinner",
        "off",
        "--disable-pip",
        "--no-deps",
        "-r",
        str(LOCK),
        "--vulnerability-service",
        service,
    ]
    for accepted in config.get("pip-audit", {}).get("ignore", []):
        args += ["--ignore-vuln", accepted["id"]]
    print(f"   advisory service: {detail}", flush=True)
    completed = subprocess.run(args, cwd=ROOT, check=False)  # noqa: S603
    return completed.returncode == 0


def _source_line(filename: str, number: int) -> str:
    try:
        return (ROOT / filename).read_text(encoding="utf-8").splitlines()[number - 1].strip()
    except (OSError, IndexError):
        return ""


def _accepts(entry: dict, finding: dict, line: str) -> bool:
    if entry["test_id"] != finding["test_id"] or entry["file"] != finding["filename"]:
        return False
    if "line" in entry:
        return entry["line"].strip() == line
    return entry["line_contains"] in line


def run_bandit(config: dict) -> bool:
    print("== bandit (service code)", flush=True)
    completed = subprocess.run(  # noqa: S603
        [str(BIN / "bandit"), "-q", "-c", str(CONFIG), "-f", "json", "-r", *BANDIT_TARGETS],
        cwd=ROOT,
        capture_output=True,
        text=True,
        check=False,
    )
    try:
        report = json.loads(completed.stdout)
    except json.JSONDecodeError:
        print(completed.stdout[-2000:], completed.stderr[-2000:])
        return False
    if report.get("errors"):
        for error in report["errors"]:
            print(f"!! bandit could not scan {error.get('filename')}: {error.get('reason')}")
        return False
    accepted = config.get("bandit", {}).get("accepted", [])
    used = [False] * len(accepted)
    unexpected = []
    for finding in report["results"]:
        line = _source_line(finding["filename"], finding["line_number"])
        matches = [i for i, entry in enumerate(accepted) if _accepts(entry, finding, line)]
        for i in matches:
            used[i] = True
        where = f"{finding['filename']}:{finding['line_number']}"
        if matches:
            print(
                f"   accepted {finding['test_id']} {where}: "
                f"{accepted[matches[0]]['reason'].split(chr(10))[0]}"
            )
        else:
            unexpected.append(finding)
            print(
                f"!! {finding['test_id']} {finding['issue_severity']}/"
                f"{finding['issue_confidence']} {where}: {finding['issue_text']}\n"
                f"     {line}"
            )
    stale = [entry for entry, hit in zip(accepted, used, strict=True) if not hit]
    for entry in stale:
        print(
            f"!! audit.toml accepts {entry['test_id']} in {entry['file']} but bandit no longer "
            f"reports it: remove the entry"
        )
    totals = report["metrics"]["_totals"]
    print(
        f"   {len(report['results'])} findings ({len(unexpected)} not accepted), "
        f"{totals['loc']} lines scanned",
        flush=True,
    )
    return not unexpected and not stale


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.quality.audit")
    parser.add_argument(
        "--advisories-optional",
        action="store_true",
        default=os.environ.get("AUDIT_ADVISORIES") == "optional",
    )
    parser.add_argument("--only", choices=["pip-audit", "bandit"])
    args = parser.parse_args(argv)
    config = tomllib.loads(CONFIG.read_text())
    results = {}
    if args.only in (None, "pip-audit"):
        results["pip-audit"] = run_pip_audit(config, args.advisories_optional)
    if args.only in (None, "bandit"):
        results["bandit"] = run_bandit(config)
    print("== audit: " + ", ".join(f"{k} {'ok' if v else 'FAILED'}" for k, v in results.items()))
    return 0 if all(results.values()) else 1


if __name__ == "__main__":
    sys.exit(main())
