"""The SQL of alerts.observe: a fixed handful of statements per batch (see that module's steps).

Plain strings with `:name` parameters, run through db.raw (the hot path skips SQLAlchemy's execution layer),
with generic plans (db.plans): the statement that took the zone locks (alerts.signals) set them, or one
before it did.
"""


def window_counts(row: str, *, oldest: bool = False) -> str:
    """A subquery counting what a rule counts in one zone over (since, :now]: count, weighted sum (`w`) and
    distinct authors, and with `oldest` the oldest counted signal's time. `row` names the outer row holding
    zone_id, categories, sources, min_confidence, min_weight and since."""
    return f"""
        SELECT count(*) AS n, coalesce(sum(sg.weight), 0) AS w,
               count(DISTINCT coalesce(sg.author_key, sg.observation_id::text)) AS authors
               {", min(sg.observed_at) AS oldest" if oldest else ""}
        FROM signals sg
        WHERE sg.zone_id = {row}.zone_id AND sg.category = ANY({row}.categories) AND sg.source = ANY({row}.sources)
          AND sg.confidence >= {row}.min_confidence AND sg.weight >= {row}.min_weight
          AND sg.observed_at > {row}.since AND sg.observed_at <= :now AND sg.retired_at IS NULL
    """


# Every (rule, zone) pair's state: the live window, the unresolved alert of its (zone, incident category) with
# the rules on it (row-locked, so the sweeper skips it), the rule's cooldown in the zone, an ack-code number
# where the pair may open, the notification log, and the silences in force (the same on every row).
READ = (
    """
    WITH r AS (
        SELECT * FROM jsonb_to_recordset(CAST(:rules AS jsonb)) AS r(
            ri int, name text, incident text, categories text[], sources text[], min_confidence float8,
            min_weight float8, since timestamptz, open_count float8, open_authors int)
    ), p AS (
        SELECT p.pi, p.zone_id, r.* FROM unnest(CAST(:pi AS integer[]), CAST(:pri AS integer[]),
                                                CAST(:pzone AS integer[])) AS p(pi, ri, zone_id)
        JOIN r ON r.ri = p.ri
    ), a AS MATERIALIZED (
        -- Each pair's alert by its key, locked where it is found: as `(zone_id, category) IN (SELECT ... FROM p)`
        -- the generic plan walked every unresolved alert and tested it against the pairs (copying each pair's
        -- row for the lock's recheck), so a report cost more the more alerts were open.
        SELECT found.* FROM (SELECT DISTINCT zone_id, incident FROM p) k CROSS JOIN LATERAL (
            SELECT al.id, al.rule, al.zone_id, al.category, al.severity, al.state, al.ack_code, al.evidence_count,
                   al.distinct_authors, al.opened_at, al.updated_at, al.expires_at, al.quiet_since
            FROM alerts al
            WHERE al.zone_id = k.zone_id AND al.category = k.incident AND al.state <> 'resolved'
            FOR UPDATE OF al) found
    )
    SELECT p.pi, s.n, s.w, s.authors,
           a.id, a.rule, a.category, a.severity, a.state, a.ack_code, a.evidence_count, a.distinct_authors,
           a.opened_at, a.updated_at, a.expires_at, a.quiet_since,
           (SELECT jsonb_agg(jsonb_build_array(ar.rule, ar.severity) ORDER BY ar.first_fired_at, ar.rule)
            FROM alert_rules ar WHERE ar.alert_id = a.id) AS alert_rules,
           -- Alerts it led (and those written before migration 0017) keep the cooldown on the alert; every
           -- rule on a resolved alert has its own in alert_rules.
           greatest((SELECT max(c.cooldown_until) FROM alerts c
                     WHERE c.rule = p.name AND c.zone_id = p.zone_id AND c.state = 'resolved'),
                    (SELECT max(ar.cooldown_until) FROM alert_rules ar
                     WHERE ar.rule = p.name AND ar.zone_id = p.zone_id)) AS cooldown_until,
           CASE WHEN o.may_open THEN nextval('ack_code_seq') END AS seq,
           -- The id the pair's alert takes if it opens, drawn here with its ack code: the decisions name the
           -- alert by it, and the insert's answer only says which openings it took.
           CASE WHEN o.may_open THEN nextval('alerts_id_seq') END AS new_id,
           (SELECT jsonb_agg(jsonb_build_array(n.at, n.reason, n.state, n.severity) ORDER BY n.at, n.id)
            FROM alert_notifications n WHERE n.alert_id = a.id) AS log,
           (SELECT jsonb_agg(jsonb_build_array(si.matchers, si.starts_at, si.ends_at)) FROM silences si
            WHERE si.starts_at <= :now AND si.ends_at > :now) AS silences
    FROM p
    LEFT JOIN a ON a.zone_id = p.zone_id AND a.category = p.incident
    CROSS JOIN LATERAL (""" + window_counts("p") + """) s
    CROSS JOIN LATERAL (SELECT a.id IS NULL AND s.w + 1e-9 >= p.open_count AND s.authors >= p.open_authors
                        AS may_open) o
    """
)

# The window statistics of many (rule, zone, window) rows at once, for the sweeper (with the oldest signal's
# time: when it leaves, the count falls).
WINDOWS = """
    SELECT w.i, s.n, s.w, s.authors, s.oldest
    FROM jsonb_to_recordset(CAST(:items AS jsonb)) AS w(i int, zone_id int, categories text[], sources text[],
                                                     min_confidence float8, min_weight float8, since timestamptz)
    CROSS JOIN LATERAL (""" + window_counts("w", oldest=True) + """) s
"""


INSERT_ALERTS = (
    """
    INSERT INTO alerts (id, rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
                        opened_at, updated_at, last_evidence_at, expires_at)
    SELECT u.id, u.rule, u.zone_id, u.category, u.severity, 'open', u.ack_code, 0, u.authors, :now, :now, :now,
           u.expires_at
    FROM unnest(CAST(:id AS bigint[]), CAST(:rule AS text[]), CAST(:zone_id AS integer[]),
                CAST(:category AS text[]), CAST(:severity AS text[]), CAST(:ack_code AS text[]),
                CAST(:authors AS integer[]), CAST(:expires_at AS timestamptz[]))
         AS u(id, rule, zone_id, category, severity, ack_code, authors, expires_at)
    ON CONFLICT (zone_id, category) WHERE state <> 'resolved' DO NOTHING
    RETURNING id
    """
)

EVIDENCE = (
    """
    WITH w AS (
        SELECT * FROM jsonb_to_recordset(CAST(:window AS jsonb)) AS w(
            alert_id bigint, zone_id int, categories text[], sources text[], min_confidence float8,
            min_weight float8, since timestamptz)
    ), ins AS (
        INSERT INTO alert_evidence (alert_id, observation_id, added_at)
        SELECT DISTINCT x.alert_id, x.observation_id, CAST(:now AS timestamptz) FROM (
            SELECT * FROM unnest(CAST(:alert_id AS bigint[]), CAST(:observation_id AS bigint[])) AS d(alert_id,
                                                                                                     observation_id)
            UNION ALL
            -- Each opening reads its own zone's window through the (zone, category, time) index: a LATERAL
            -- subquery, fenced by OFFSET 0 so the planner cannot flatten it back into a join. As a join, the
            -- generic plan hashed every signal up to now (137,000 rows, 213 ms, for 3 openings).
            SELECT w.alert_id, sg.observation_id FROM w CROSS JOIN LATERAL (
                SELECT sg.observation_id FROM signals sg
                WHERE sg.zone_id = w.zone_id AND sg.category = ANY(w.categories) AND sg.observed_at > w.since
                  AND sg.observed_at <= CAST(:now AS timestamptz) AND sg.source = ANY(w.sources)
                  AND sg.confidence >= w.min_confidence AND sg.weight >= w.min_weight AND sg.retired_at IS NULL
                OFFSET 0
            ) sg
        ) x
        ON CONFLICT DO NOTHING
        RETURNING alert_id, observation_id
    )
    SELECT true AS new, ins.alert_id, o.source, count(*) FROM ins JOIN observations o ON o.id = ins.observation_id
    GROUP BY ins.alert_id, o.source
    UNION ALL
    SELECT false, e.alert_id, o.source, count(*) FROM alert_evidence e JOIN observations o ON o.id = e.observation_id
    WHERE e.alert_id = ANY(CAST(:old_of AS bigint[])) GROUP BY e.alert_id, o.source
    """
)

# Alert updates: WRITE's first CTE.
_UPDATE = """
    upd AS (
        UPDATE alerts a SET evidence_count = a.evidence_count + u.added,
               distinct_authors = greatest(a.distinct_authors, u.authors),
               -- Evidence evaluated at its own (earlier) time never moves a time backwards.
               last_evidence_at = greatest(a.last_evidence_at, :now), updated_at = greatest(a.updated_at, :now),
               expires_at = greatest(a.expires_at, u.expires_at), severity = u.severity, rule = u.rule,
               quiet_since = CASE WHEN u.clear_quiet THEN NULL ELSE a.quiet_since END,
               last_notified_at = CASE WHEN u.notified THEN CAST(:now AS timestamptz) ELSE a.last_notified_at END
        FROM unnest(CAST(:u_id AS bigint[]), CAST(:u_added AS integer[]), CAST(:u_authors AS integer[]),
                    CAST(:u_expires AS timestamptz[]), CAST(:u_severity AS text[]), CAST(:u_clear AS boolean[]),
                    CAST(:u_notified AS boolean[]), CAST(:u_rule AS text[]))
             AS u(id, added, authors, expires_at, severity, clear_quiet, notified, rule)
        WHERE a.id = u.id
        RETURNING a.id
    )"""


def _records(opened: bool) -> str:
    """History, outbox events, notification-log rows and fired rules: CTEs of WRITE and OPEN_AND_WRITE. With
    `opened`, only the rows of alerts its CTE `ins` inserted (an opening that lost writes nothing)."""
    def only(row: str) -> str:
        return f"WHERE {row}.alert_id IN (SELECT id FROM ins)" if opened else ""
    return f"""
    hist_rows AS (
        INSERT INTO alert_history (alert_id, at, from_state, to_state, severity, actor, reason)
        SELECT h.alert_id, :now, h.from_state, h.to_state, h.severity, h.actor, h.reason
        FROM unnest(CAST(:h_id AS bigint[]), CAST(:h_from AS text[]), CAST(:h_to AS text[]),
                    CAST(:h_severity AS text[]), CAST(:h_actor AS text[]), CAST(:h_reason AS text[]))
             AS h(alert_id, from_state, to_state, severity, actor, reason) {only("h")}
    ), ev AS (
        INSERT INTO outbox_events (event_id, alert_id, kind, payload, created_at, next_attempt_at, attempts)
        SELECT e.event_id, e.alert_id, e.kind, e.payload, :now, :now, 0
        FROM unnest(CAST(:e_event_id AS uuid[]), CAST(:e_alert_id AS bigint[]), CAST(:e_kind AS text[]),
                    CAST(:e_payload AS jsonb[])) AS e(event_id, alert_id, kind, payload) {only("e")}
    ), log AS (
        INSERT INTO alert_notifications (alert_id, at, reason, kind, state, severity, event_id)
        SELECT e.alert_id, :now, e.reason, e.kind, e.state, e.severity, e.event_id
        FROM unnest(CAST(:e_event_id AS uuid[]), CAST(:e_alert_id AS bigint[]), CAST(:e_kind AS text[]),
                    CAST(:e_reason AS text[]), CAST(:e_state AS text[]), CAST(:e_severity AS text[]))
             AS e(event_id, alert_id, kind, reason, state, severity) {only("e")}
    ), fired AS (
        -- Every rule that fires for an alert: once recorded it stays, with when it last fired.
        INSERT INTO alert_rules (alert_id, rule, zone_id, severity, first_fired_at, last_fired_at, cooldown_s)
        SELECT r.alert_id, r.rule, r.zone_id, r.severity, :now, :now, r.cooldown_s
        FROM unnest(CAST(:r_alert_id AS bigint[]), CAST(:r_rule AS text[]), CAST(:r_zone_id AS integer[]),
                    CAST(:r_severity AS text[]), CAST(:r_cooldown AS float8[]))
             AS r(alert_id, rule, zone_id, severity, cooldown_s) {only("r")}
        ON CONFLICT (alert_id, rule) DO UPDATE SET last_fired_at = EXCLUDED.last_fired_at,
            severity = EXCLUDED.severity, cooldown_s = EXCLUDED.cooldown_s
    )"""


WRITE = "WITH" + _UPDATE + "," + _records(opened=False) + "\n    SELECT count(*) FROM upd\n"

# The alerts opened by immediate rules, when they are all a batch changes (alerts.observe._evaluate), in one
# statement with their evidence, history, events, log and rules: INSERT_ALERTS, the links and WRITE were
# three round trips. Each is inserted as WRITE would leave it (evidence counted in Python: this batch's own
# signals); one whose insert loses to an unresolved alert (none expected: every opener holds the zone's
# lock) writes nothing else, and is not among the ids returned. The rows referring to an alert inserted by
# a sibling CTE pass their foreign keys: those are checked at the end of the statement.
OPEN_AND_WRITE = """
    WITH ins AS (
        INSERT INTO alerts (id, rule, zone_id, category, severity, state, ack_code, evidence_count, distinct_authors,
                            opened_at, updated_at, last_evidence_at, expires_at, last_notified_at)
        SELECT u.id, u.rule, u.zone_id, u.category, u.severity, 'open', u.ack_code, u.added, u.authors, :now, :now,
               :now, u.expires, CASE WHEN u.notified THEN CAST(:now AS timestamptz) END
        FROM unnest(CAST(:u_id AS bigint[]), CAST(:u_rule AS text[]), CAST(:u_zone_id AS integer[]),
                    CAST(:u_category AS text[]), CAST(:u_severity AS text[]), CAST(:u_ack_code AS text[]),
                    CAST(:u_added AS integer[]), CAST(:u_authors AS integer[]), CAST(:u_expires AS timestamptz[]),
                    CAST(:u_notified AS boolean[]))
             AS u(id, rule, zone_id, category, severity, ack_code, added, authors, expires, notified)
        ON CONFLICT (zone_id, category) WHERE state <> 'resolved' DO NOTHING
        RETURNING id
    ), link AS (
        INSERT INTO alert_evidence (alert_id, observation_id, added_at)
        SELECT DISTINCT d.alert_id, d.observation_id, CAST(:now AS timestamptz)
        FROM unnest(CAST(:alert_id AS bigint[]), CAST(:observation_id AS bigint[])) AS d(alert_id, observation_id)
        WHERE d.alert_id IN (SELECT id FROM ins)
        ON CONFLICT DO NOTHING
    ),""" + _records(opened=True) + """
    SELECT id FROM ins
"""
