"""The processing stages run after validation: risk, rules, service quality, alerting."""
