"""The SMS fan-out's SQL (dispatch.fanout): the queue claim, the reads planning needs, the deliveries insert."""

from sqlalchemy import text

# SKIP LOCKED: several dispatchers claim from the queue at once.
CLAIM = text(
    """
    SELECT q.outbox_id, o.event_id, o.alert_id, o.kind FROM sms_fanout_queue q
    JOIN outbox_events o ON o.id = q.outbox_id
    ORDER BY q.outbox_id LIMIT :limit
    FOR UPDATE OF q SKIP LOCKED
    """
)

ALERTS = text(
    """
    SELECT a.id, a.rule, a.state, a.severity, a.category, a.evidence_count, a.ack_code, a.opened_at,
           a.escalation_ticks, a.zone_id, l.name AS layer, z.code, z.name AS zone_name
    FROM alerts a JOIN zones z ON z.id = a.zone_id JOIN zone_layers l ON l.id = z.layer_id
    WHERE a.id = ANY(:ids)
    """
)

# Every coverage row of any of the alerts' zones, and every layer-wide row of their layers, with the
# responder's agencies (migration 0022; none: paged for every alert their coverage matches).
COVERAGE = text(
    """
    SELECT r.id, r.phone, r.opted_out, c.zone_id, c.layer, c.tier, c.on_call, c.timezone,
           ARRAY(SELECT ra.agency_id FROM responder_agencies ra WHERE ra.responder_id = r.id) AS agency_ids
    FROM coverage c JOIN responders r ON r.id = c.responder_id
    WHERE c.zone_id = ANY(:zone_ids) OR (c.zone_id IS NULL AND c.layer = ANY(:layers))
    """
)

NOTIFIED = text(
    "SELECT alert_id, responder_id FROM deliveries WHERE alert_id = ANY(:ids) AND responder_id IS NOT NULL"
)

# ON CONFLICT: a replayed plan cannot page anyone twice.
INSERT_DELIVERIES = text(
    """
    INSERT INTO deliveries (event_id, alert_id, responder_id, channel, tier, body, status, attempts,
                            next_attempt_at, created_at, updated_at)
    VALUES (:event_id, :alert_id, :responder_id, :channel, :tier, :body, 'pending', 0, :now, :now, :now)
    ON CONFLICT (event_id, responder_id, channel) DO NOTHING
    """
)

# The pending backlog, for the queue-ceiling check.
PENDING = text("SELECT count(*) FROM deliveries WHERE status = 'pending'")

# The claimed events, once planned.
DEQUEUE = text("DELETE FROM sms_fanout_queue WHERE outbox_id = ANY(:ids)")
