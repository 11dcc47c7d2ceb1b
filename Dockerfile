# synapse-admin-bot: small, non-root (uid 10001), built from a clone as a wheel. As in the README's operator
# guide, the config lives in the state directory with its token and state (paths relative to it):
#   docker build -t synapse-admin-bot .
#   chown -R 10001 "$STATE_DIR" && docker run -d --name synapse-admin-bot -v "$STATE_DIR:/data" synapse-admin-bot
# `docker kill -s HUP synapse-admin-bot` reloads access, admin rooms and report timings.
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bot \
    && mkdir -p /data && chown bot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
# The state directory: config.yaml, the token file, state.db and the E2EE keys (crypto/).
VOLUME /data
WORKDIR /data
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["synapse-admin-bot"]
CMD ["run", "--config", "/data/config.yaml"]
