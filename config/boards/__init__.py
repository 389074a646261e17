"""Grafana boards, alert rules and provisioning as code, plus the HTML look without Grafana.

One module per board (``risk_overview``, ``service_quality``, ``alerts_board``,
``model_health``, ``service_risk``) holds that board's panels as
:class:`~finpulse.config.boards.spec. PanelSpec` entries; everything else (Grafana JSON, the query
tests, the HTML board) reads them.
"""
