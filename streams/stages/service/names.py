"""Names of the service stages' keyed states and policy rules (one place).

>>> RULE_SLA, PARTITIONS_STATE
('service.sla_breach', 'service_partitions')
"""

from __future__ import annotations

# keyed states (Faust tables live); all keyed by something partition-local
PARTITIONS_STATE = "service_partitions"  # p{partition}, p{partition}|c{day}
CUSTOMERS_STATE = "service_customers"  # customer_id
RISK_STATE = "service_last_risk"  # customer_id: risk alerts of the last 24 h
CHANNELS_STATE = "service_channels"  # channel: pooled minutes (on finpulse.channel_minutes)

# policy rule ids (config/policy.yaml)
RULE_SLA = "service.sla_breach"
RULE_CSAT_DROP = "service.csat_drop"
RULE_COMPLAINT_DUE_SOON = "service.complaint_due_soon"
RULE_COMPLAINT_OVERDUE = "service.complaint_overdue"
RULE_REPEAT_CONTACTS = "service.repeat_contacts"
RULE_RISK_FRICTION = "service.risk_friction"
RULE_CUSTOMER_AT_RISK = "service.customer_at_risk"
SERVICE_RULES = (
    RULE_SLA,
    RULE_CSAT_DROP,
    RULE_COMPLAINT_DUE_SOON,
    RULE_COMPLAINT_OVERDUE,
    RULE_REPEAT_CONTACTS,
    RULE_RISK_FRICTION,
    RULE_CUSTOMER_AT_RISK,
)
