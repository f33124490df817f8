# The service image: the same two steps as on a workstation, `make install` then `make run`.
# Listeners are published (EXPOSE) once the SIP engine and the web app exist.
# Keep the database and recordings across containers with volumes on /app/var and
# /app/recordings.
FROM python:3.11-slim-bookworm

# make drives the install and the run; tini as PID 1 forwards `docker stop`'s SIGTERM to make,
# which passes it on to the service for a graceful shutdown (a bare make as PID 1 would not
# die of its own re-raised signal).
RUN apt-get update \
    && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends make tini \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN useradd --system --create-home --home-dir /home/callcenter callcenter \
    && mkdir /app && chown callcenter:callcenter /app
WORKDIR /app
USER callcenter

# The editable install (`pip install -e .`) needs the sources in place; alembic.ini and
# migrations/ are read from /app at run time.
COPY --chown=callcenter:callcenter . .
# var/ is made here so that a named volume mounted on it inherits the service user's ownership.
RUN make install && mkdir -p var

ENTRYPOINT ["/usr/bin/tini", "--"]
CMD ["make", "run"]
