"""Render sample alerts (Alert, Update, Cancel; one and several polygons) and validate them against the
OASIS CAP 1.2 XSD in the shared data folder. Prints `cap_valid=<true|false>` last.

Run: .venv/bin/python -m bench.cap_xsd
"""

import math
import sys
from datetime import UTC, datetime, timedelta

from alerts.cap import CapAlert, render_cap, validate_cap
from tocsin.settings import Settings

T0 = datetime(2026, 11, 25, 21, 0, 5, tzinfo=UTC)
SQUARE = ((-74.00, 40.70), (-73.95, 40.70), (-73.95, 40.75), (-74.00, 40.75), (-74.00, 40.70))
CIRCLE = tuple((-73.90 + 0.01 * math.cos(2 * math.pi * k / 99), 40.72 + 0.01 * math.sin(2 * math.pi * k / 99))
               for k in range(99))  # 99 points, closed to the 100-point limit


def samples() -> list[tuple[str, CapAlert]]:
    base = dict(
        alert_id=1, rule="gas_leak_report", category="gas_leak", severity="critical", state="open",
        evidence_count=1, distinct_authors=1, sources=frozenset({"utility_report"}), opened_at=T0,
        expires_at=T0 + timedelta(hours=6), zone_layer="nta", zone_code="QN0103", zone_name="Astoria (Central)",
        polygons=(SQUARE,), versions=(T0,), web="http://127.0.0.1:8000/a/1",
    )
    later = (T0, T0 + timedelta(minutes=4), T0 + timedelta(minutes=30))
    return [
        ("alert", CapAlert(**base)),
        ("update", CapAlert(**{**base, "state": "acknowledged", "versions": later[:2], "severity": "major",
                               "category": "flood", "sources": frozenset({"post"}), "polygons": (SQUARE, CIRCLE)})),
        ("cancel", CapAlert(**{**base, "state": "resolved", "versions": later, "expires_at": None,
                               "category": "something_else", "sources": frozenset(), "web": None})),
    ]


def main() -> int:
    cap_dir = Settings().shared_data_dir / "cap"
    xsd = cap_dir / "CAP-v1.2.xsd"
    if not xsd.exists():
        print(f"skipped: {xsd} is absent (set TOCSIN_SHARED_DATA_DIR to the reference data)")
        return 0
    valid = True
    for name, alert in samples():
        problems = validate_cap(render_cap(alert, sender="tocsin@localhost"), xsd)
        print(f"{name}: {'valid' if not problems else 'INVALID'}")
        for p in problems:
            print(f"  {p}")
        valid = valid and not problems
    print(f"cap_valid={'true' if valid else 'false'}")
    return 0 if valid else 1


if __name__ == "__main__":
    sys.exit(main())
