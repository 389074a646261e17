"""Connection options of a plain aiokafka client (the console's producer, the workers'
silence feed) from the settings: the same security as every other finpulse client.

>>> from finpulse.config.settings import Settings
>>> aiokafka_options(Settings(broker_url="kafka://a:1;b:2"))
{'bootstrap_servers': ['a:1', 'b:2'], 'security_protocol': 'PLAINTEXT'}
"""

from __future__ import annotations

import ssl

from finpulse.config.settings import Settings


def aiokafka_options(settings: Settings) -> dict[str, object]:
    """Keyword arguments for ``AIOKafkaProducer`` / ``AIOKafkaConsumer``."""
    options = dict(settings.kafka_client_kwargs())
    cafile = options.pop("ssl_cafile", None)
    if settings.kafka_security_protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = ssl.create_default_context(cafile=cafile)  # type: ignore[arg-type]
    return {"bootstrap_servers": settings.broker_bootstrap, **options}
