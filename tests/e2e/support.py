"""Helpers for the browser tests."""

from pathlib import Path

import httpx

REPO = Path(__file__).resolve().parents[2]
ARTIFACTS = REPO / "test-artifacts"  # git-ignored


def post_report(base_url: str, utility_key: str, lon: float, lat: float, *, external_id: str,
                category: str = "gas_leak", **props) -> dict:
    body = {"type": "Feature", "geometry": {"type": "Point", "coordinates": [lon, lat]},
            "properties": {"external_id": external_id, "category": category, **props}}
    r = httpx.post(f"{base_url}/v1/reports", json=body, headers={"Authorization": f"Bearer {utility_key}"},
                   timeout=10)
    assert r.status_code == 201, r.text
    return r.json()
