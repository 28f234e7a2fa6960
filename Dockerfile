# news-monitor in a container: slim Python, non-root, state on a volume (docs/operations.md).
#   docker build -t news-monitor .
#   docker run -d --name news-monitor -v news-monitor-data:/data \
#     -v "$PWD/config/monitor.yaml:/config/monitor.yaml:ro" --env-file ./secrets.env \
#     -p 127.0.0.1:9108:9108 news-monitor
# Reload the configuration: docker kill --signal HUP news-monitor (or edit the mounted file).
FROM python:3.12-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    NEWS_MONITOR_CONFIG=/config/monitor.yaml \
    NEWS_MONITOR_STATE=/data/monitor.db

WORKDIR /app
COPY pyproject.toml README.md ./
COPY monitor ./monitor
RUN pip install . \
    && useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin monitor \
    && mkdir -p /data /config \
    && chown monitor /data
COPY config/monitor.yaml /config/monitor.yaml

USER monitor
VOLUME ["/data"]
EXPOSE 9108

# /healthz answers 200 only while the scheduler ticks and deliveries make progress.
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:9108/healthz', timeout=4).status != 200)"]

# SIGTERM: stop polling, finish in-flight deliveries within 8 s (under Docker's default
# 10 s stop timeout), leave pending alerts in /data, exit 0.
STOPSIGNAL SIGTERM
# 0.0.0.0 inside the container so the published port reaches it; publish it on the
# host's loopback (-p 127.0.0.1:9108:9108) unless Prometheus scrapes from elsewhere.
CMD ["news-monitor", "run", "--http", "0.0.0.0:9108"]
