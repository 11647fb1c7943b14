# syntax=docker/dockerfile:1
# The mrwbus image: the service, the reference node agent and the operators' CLI in one image.
#
#   docker build -t mrwbus .
#   docker run --rm mrwbus --help
#   docker run -d -p 127.0.0.1:8080:8080 -e MRWBUS_AMQP_URL=amqp://... \
#       -v /etc/mrwbus/cluster.yaml:/etc/mrwbus/cluster.yaml:ro mrwbus
#
# Two stages: the first builds mrwbus and every dependency as wheels, once; the second installs
# those wheels with no network and no compiler, so the image that runs carries no build tools
# and a container never installs anything when it starts.

ARG PYTHON_IMAGE=python:3.11-slim-bookworm

FROM ${PYTHON_IMAGE} AS build
WORKDIR /src
# The metadata first: the dependency wheels stay cached until pyproject.toml changes.
COPY pyproject.toml README.md ./
COPY mrwbus ./mrwbus
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM ${PYTHON_IMAGE}
LABEL org.opencontainers.image.title="mrwbus" \
      org.opencontainers.image.description="A fault-to-recovery bus for HA clusters, on RabbitMQ" \
      org.opencontainers.image.licenses="Apache-2.0"
RUN --mount=type=bind,from=build,source=/wheels,target=/wheels \
    pip install --no-cache-dir --no-index --find-links=/wheels mrwbus \
    && groupadd --system mrwbus \
    && useradd --system --gid mrwbus --home-dir /var/lib/mrwbus --shell /usr/sbin/nologin mrwbus \
    && install -d -o mrwbus -g mrwbus -m 0750 /var/lib/mrwbus /var/lib/mrwbus/agent \
    && install -d -o mrwbus -g mrwbus -m 0700 /var/lib/mrwbus-secrets \
    && install -d -m 0755 /etc/mrwbus
# The shipped demo configuration; mount your own over it.
COPY config/cluster.yaml /etc/mrwbus/cluster.yaml

ENV PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
# Relative paths in the configuration (agent.state_dir, the demo handlers' var/demo) land in the
# state directory: mount a volume there for an agent (the service keeps its state in the broker).
WORKDIR /var/lib/mrwbus
USER mrwbus:mrwbus
EXPOSE 8080

# /healthz answers 200 while the service is connected and consuming (or a healthy standby);
# no curl in a slim image, so Python asks. Agents run without --http: compose disables it there.
HEALTHCHECK --interval=15s --timeout=5s --start-period=30s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8080/healthz', timeout=4).status != 200)"]

ENTRYPOINT ["mrwbus"]
# Inside a container the status page must listen on every interface to be published at all;
# publish it on 127.0.0.1 of the host (see docker-compose.yml).
CMD ["run", "--config", "/etc/mrwbus/cluster.yaml", "--http", "0.0.0.0:8080"]
