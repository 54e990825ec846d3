"""Which alerts and silences a caller's agencies let it see and act on (accounts.agencies.Coverage).

Every route that names one alert calls `require_alert` first; an alert outside the caller's coverage is
UnknownAlert with the same message as one that does not exist (404, no existence leak). Lists add
`alert_filter` to their WHERE.
"""

from collections.abc import Sequence

from sqlalchemy import text
from sqlalchemy.orm import Session

from accounts.agencies import Coverage
from alerts.errors import UnknownAlert, UnknownSilence
from alerts.models import Silence
from db.errors import Forbidden

# The zone test for a query over `alerts a JOIN zones z ... JOIN zone_layers l`.
ALERT_ZONE_TEST = "{zones} @> jsonb_build_array(jsonb_build_object('layer', l.name, 'code', z.code))"


def alert_filter(coverage: Coverage) -> tuple[str, dict[str, object]]:
    """WHERE fragment (aliases a, z, l) and parameters: the alerts `coverage` lets its caller see."""
    return coverage.sql(category="a.category", zone_test=ALERT_ZONE_TEST)


def require_alert(session: Session, *, alert_id: int, coverage: Coverage) -> str | None:
    """UnknownAlert unless the alert exists and the caller may see it; returns the caller's agencies that cover
    it, for the history row an action writes (None: no agency)."""
    where, params = alert_filter(coverage)
    row = session.execute(text(
        "SELECT a.category, l.name, z.code FROM alerts a JOIN zones z ON z.id = a.zone_id "
        f"JOIN zone_layers l ON l.id = z.layer_id WHERE a.id = :alert_id AND {where}"),
        {"alert_id": alert_id, **params}).first()
    if row is None:
        raise UnknownAlert(f"no alert with id {alert_id}", alert_id=alert_id)
    category, layer, code = row
    return coverage.audit_label(category=category, layer=layer, code=code)


def check_new_silence(coverage: Coverage, matchers: dict[str, str]) -> None:
    """Forbidden unless the silence mutes only alerts the caller's agencies cover (the matchers are the
    caller's own, so saying which is missing leaks nothing)."""
    if not coverage.silence_within(matchers):
        raise Forbidden(f"your agencies ({', '.join(coverage.agencies) or 'none'}) do not cover every alert "
                        f"these matchers {dict(sorted(matchers.items()))} would silence: name a category and, "
                        "for an agency with zones, the layer and zone")


def visible_silences(coverage: Coverage, silences: Sequence[Silence]) -> list[Silence]:
    """The silences that could mute an alert the caller covers."""
    return [s for s in silences if coverage.silence_overlaps(dict(s.matchers))]


def require_silence(session: Session, *, silence_id: int, coverage: Coverage) -> None:
    """Before expiring: UnknownSilence when the caller cannot see it (as if it did not exist), Forbidden when
    it also mutes alerts outside the caller's agencies."""
    silence = session.get(Silence, silence_id)
    if silence is None or not coverage.silence_overlaps(dict(silence.matchers)):
        raise UnknownSilence(f"no silence with id {silence_id}", silence_id=silence_id)
    if not coverage.silence_within(dict(silence.matchers)):
        raise Forbidden(f"silence {silence_id} also mutes alerts outside your agencies; an admin can expire it")
