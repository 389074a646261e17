"""``finpulse console``: the web console where on-call staff triage alerts.

A separate process (workers stay disposable): server-rendered pages over ClickHouse, and
actions published on ``finpulse.alert_actions`` (and, for verdicts, ``finpulse.feedback``)
and recorded in ClickHouse. See docs/console.md.
"""
