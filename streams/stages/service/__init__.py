"""Service quality: minute metrics and SLA, complaints, satisfaction, customer view, service x risk.

See :mod:`finpulse.streams.stages.service.stage` for how the pieces run in the pipeline.
"""
