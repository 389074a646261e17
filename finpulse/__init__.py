"""finpulse: a streaming monitor of risk and customer service for financial institutions.

One installed package, four sub-packages (kept as the checkout's top-level folders):
``finpulse.streams`` (the Faust worker, its stages and tools), ``finpulse.models`` (event
schemas, features, online models), ``finpulse.sinks`` (ClickHouse, webhook) and
``finpulse.config`` (settings, policy, boards as code).

>>> import finpulse.streams.cli
>>> finpulse.streams.cli.main.__module__
'finpulse.streams.cli'
"""
