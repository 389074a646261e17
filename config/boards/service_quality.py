"""Service quality: service level against 80/20 per channel, speed of answer, handle time,
first-contact resolution, CSAT, complaints ageing against the 15-day deadline."""

from __future__ import annotations

from finpulse.config.boards.spec import (
    COMPLAINT_DECISION_DAYS,
    FILTERS,
    SERVICE_LEVEL_SECONDS,
    SERVICE_LEVEL_TARGET,
    BoardSpec,
    PanelSpec,
)

BOARD = BoardSpec(
    uid="finpulse-service-quality",
    title="finpulse · Service quality",
    description="Contact-centre and digital service quality per channel and segment.",
    panels=(
        PanelSpec(
            f"Service level: answered within {SERVICE_LEVEL_SECONDS} s (target "
            f"{SERVICE_LEVEL_TARGET:.0%})",
            f"""SELECT $__timeInterval(minute) AS t, channel,
       sum(answered_in_target) / sum(contacts) AS service_level
FROM interactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, channel
HAVING sum(contacts) > 0
ORDER BY t, channel""",
            "t:time channel:text service_level:number",
            unit="percentunit",
            min_val=0,
            max_val=1,
            thresholds=((0, "red"), (SERVICE_LEVEL_TARGET, "green")),
        ),
        PanelSpec(
            "Average speed of answer",
            f"""SELECT $__timeInterval(minute) AS t, channel,
       sum(wait_s_sum) / sum(contacts) AS avg_wait_s
FROM interactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, channel
HAVING sum(contacts) > 0
ORDER BY t, channel""",
            "t:time channel:text avg_wait_s:number",
            unit="s",
        ),
        PanelSpec(
            "Average handle time",
            f"""SELECT $__timeInterval(minute) AS t, channel,
       sum(handle_s_sum) / sum(contacts) AS avg_handle_s
FROM interactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, channel
HAVING sum(contacts) > 0
ORDER BY t, channel""",
            "t:time channel:text avg_handle_s:number",
            unit="s",
        ),
        PanelSpec(
            "First-contact resolution",
            f"""SELECT $__timeInterval(minute) AS t, channel,
       sum(fcr) / sum(fcr_known) AS fcr_rate
FROM interactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t, channel
HAVING sum(fcr_known) > 0
ORDER BY t, channel""",
            "t:time channel:text fcr_rate:number",
            unit="percentunit",
            min_val=0,
            max_val=1,
        ),
        PanelSpec(
            "Contacts and complaints",
            f"""SELECT $__timeInterval(minute) AS t,
       sum(contacts) AS contacts, sum(complaints) AS complaints
FROM interactions_1m
WHERE $__timeFilter(minute) AND {FILTERS}
GROUP BY t
ORDER BY t""",
            "t:time contacts:number complaints:number",
            w=8,
        ),
        PanelSpec(
            "CSAT actual (surveys, 1-5)",
            f"""SELECT $__timeInterval(f.ts) AS t, avg(f.value) AS csat_actual, count() AS surveys
FROM feedback AS f FINAL
INNER JOIN
(
    SELECT event_id FROM interactions FINAL
    WHERE ts >= $__fromTime - INTERVAL 7 DAY AND {FILTERS}
) AS i ON i.event_id = f.ref_event_id
WHERE $__timeFilter(f.ts) AND f.kind = 'csat_survey' AND isNotNull(f.value)
GROUP BY t
ORDER BY t""",
            "t:time csat_actual:number surveys:number",
            min_val=1,
            max_val=5,
            w=8,
        ),
        PanelSpec(
            "CSAT predicted vs actual (satisfaction model)",
            """SELECT $__timeInterval(ts) AS t, metric, avg(value) AS value
FROM model_metrics
WHERE $__timeFilter(ts) AND model = 'satisfaction'
  AND metric IN ('csat_actual', 'csat_predicted', 'mae')
GROUP BY t, metric
ORDER BY t, metric""",
            "t:time metric:text value:number",
            w=8,
        ),
        PanelSpec(
            f"Open complaints ageing against {COMPLAINT_DECISION_DAYS} days",
            f"""SELECT complaint_id, customer_id, segment,
       arrayStringConcat(arraySort(groupUniqArray(channel)), ',') AS channels, min(ts) AS opened,
       dateDiff('day', min(ts), now()) AS age_days,
       {COMPLAINT_DECISION_DAYS} - age_days AS days_left
FROM interactions FINAL
WHERE interaction_type = 'complaint' AND isNotNull(complaint_id) AND {FILTERS}
  AND complaint_id NOT IN
  (
      SELECT assumeNotNull(complaint_id) FROM interactions FINAL
      WHERE isNotNull(complaint_id) AND event_id IN
          (SELECT ref_event_id FROM feedback FINAL WHERE kind = 'complaint_closed')
  )
GROUP BY complaint_id, customer_id, segment
ORDER BY age_days DESC, complaint_id
LIMIT 50""",
            "complaint_id:text customer_id:text segment:text channels:text opened:time "
            "age_days:number days_left:number",
            kind="table",
            w=24,
            thresholds=((0, "red"), (1, "orange"), (4, "yellow"), (8, "blue")),
            color_column="days_left",
        ),
    ),
)
