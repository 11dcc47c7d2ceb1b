# synapse-admin-bot: small, non-root, state on a volume, config by file or environment.
#   docker build -t synapse-admin-bot .
#   docker run -v ./config.yaml:/config/config.yaml:ro -v bot-data:/data synapse-admin-bot
FROM python:3.11-slim AS build
WORKDIR /src
COPY pyproject.toml README.md ./
COPY bot ./bot
COPY commands ./commands
RUN pip wheel --no-cache-dir --wheel-dir /wheels .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /data --shell /usr/sbin/nologin bot \
    && mkdir -p /data /config && chown bot /data
COPY --from=build /wheels /wheels
RUN pip install --no-cache-dir /wheels/*.whl && rm -rf /wheels
USER 10001
# storage.path in the config should point here (e.g. /data/state.db): it holds the E2EE keys.
VOLUME /data
WORKDIR /data
ENV PYTHONUNBUFFERED=1
ENTRYPOINT ["synapse-admin-bot"]
CMD ["run", "--config", "/config/config.yaml"]
