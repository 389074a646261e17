# finpulse worker / init / simulator image (docker-compose.yml builds it as finpulse:0.1.0).
# The base image is pinned here and in config/deployment.py (PYTHON_BASE_IMAGE); a test
# keeps them equal.
FROM python:3.11.11-slim-bookworm

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY pyproject.toml README.md ./
COPY streams ./streams
COPY models ./models
COPY sinks ./sinks
COPY config ./config
COPY finpulse ./finpulse
# Production image: no embedded broker/ClickHouse (extra `local`), no dev tools.
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /var/lib/finpulse --create-home finpulse

USER finpulse
ENV FINPULSE_DATA_DIR=/var/lib/finpulse
EXPOSE 6066
ENTRYPOINT []
CMD ["finpulse", "worker"]
