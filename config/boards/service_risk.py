"""Service × risk (guide chapter 8): friction by rule, customer health, top at-risk customers.

Friction: customers whose transactions raised a risk or compliance alert and who then contacted
service within 24 h, per rule (the service cost of false positives). Customer health here is a
board-side blend of the customer's top risk score and service pain (complaints, repeat contacts)
until the service engineer's ``customer_status`` table lands.
"""

from __future__ import annotations

from finpulse.config.boards.spec import FILTERS, BoardSpec, PanelSpec, var_in_or_none

ALERT_FILTERS = f"{var_in_or_none('segment')} AND {var_in_or_none('channel')}"

_ALERTED = f"""(
    SELECT rule_id, customer_id, first_seen FROM alerts FINAL
    WHERE domain IN ('risk', 'compliance') AND ifNull(customer_id, '') != ''
      AND $__timeFilter(first_seen) AND {ALERT_FILTERS}
) AS a"""

_CONTACTS = """(
    SELECT customer_id, ts FROM interactions FINAL
    WHERE ts >= $__fromTime AND ts < $__toTime + INTERVAL 1 DAY
) AS i"""

BOARD = BoardSpec(
    uid="finpulse-service-risk",
    title="finpulse · Service × risk",
    description="How risk controls touch customers: friction by rule and customer health.",
    panels=(
        PanelSpec(
            "Friction by rule: alerted customers contacting service within 24 h",
            f"""SELECT a.rule_id AS rule_id,
       uniqExact(a.customer_id) AS alerted_customers,
       uniqExactIf(a.customer_id, i.ts >= a.first_seen
                   AND i.ts < a.first_seen + INTERVAL 1 DAY) AS contacted_24h,
       round(contacted_24h / alerted_customers, 3) AS friction_rate
FROM {_ALERTED}
LEFT JOIN {_CONTACTS} ON i.customer_id = a.customer_id
GROUP BY rule_id
ORDER BY contacted_24h DESC, rule_id""",
            "rule_id:text alerted_customers:number contacted_24h:number friction_rate:number",
            kind="table",
        ),
        PanelSpec(
            "Friction over time",
            f"""SELECT $__timeInterval(a.first_seen) AS t,
       uniqExactIf(a.customer_id, i.ts >= a.first_seen
                   AND i.ts < a.first_seen + INTERVAL 1 DAY) AS contacted_24h,
       uniqExact(a.customer_id) AS alerted_customers
FROM {_ALERTED}
LEFT JOIN {_CONTACTS} ON i.customer_id = a.customer_id
GROUP BY t
ORDER BY t""",
            "t:time contacted_24h:number alerted_customers:number",
        ),
        PanelSpec(
            "Top at-risk customers (customer health, 0 worst - 100 best)",
            f"""SELECT r.customer_id AS customer_id, r.customer_segment AS customer_segment,
       r.max_score AS max_score,
       ifNull(s.complaints, 0) AS complaints, ifNull(s.contacts, 0) AS contacts,
       round(100 - 0.6 * r.max_score
             - 0.4 * least(100, 25 * ifNull(s.complaints, 0)
                                + 10 * greatest(ifNull(s.contacts, 0) - 1, 0)), 1) AS health
FROM
(
    SELECT customer_id, any(segment) AS customer_segment, max(score) AS max_score
    FROM risk_scores FINAL
    WHERE $__timeFilter(ts) AND {FILTERS}
    GROUP BY customer_id
) AS r
LEFT JOIN
(
    SELECT customer_id, count() AS contacts, countIf(interaction_type = 'complaint') AS complaints
    FROM interactions FINAL
    WHERE $__timeFilter(ts)
    GROUP BY customer_id
) AS s ON s.customer_id = r.customer_id
ORDER BY health, customer_id
LIMIT 20""",
            "customer_id:text customer_segment:text max_score:number complaints:number "
            "contacts:number "
            "health:number",
            kind="table",
            w=24,
            thresholds=((0, "red"), (40, "orange"), (60, "yellow"), (80, "blue")),
            color_column="health",
        ),
    ),
)
