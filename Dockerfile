# The VPS as a container: the first stage compiles the `dionysus` binary with the Bun pinned in
# package.json (installed by npm ci, as in CI); the runtime image holds only that binary on a slim
# Debian (it needs glibc), runs as an unprivileged user and starts `dionysus vps serve`.
# Configuration comes from the environment (see compose.yaml and docs/vps.md).

FROM node:22-bookworm-slim AS build
WORKDIR /src
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund
COPY . .
RUN ./node_modules/.bin/bun run build && ./dist/dionysus --version

FROM debian:bookworm-slim
RUN useradd --system --uid 10001 --user-group --home-dir /data --no-create-home dionysus \
 && mkdir -p /data && chown 10001:10001 /data && chmod 0700 /data
COPY --from=build /src/dist/dionysus /usr/local/bin/dionysus
USER 10001:10001
ENV DIONYSUS_VPS_HOME=/data \
    DIONYSUS_VPS_HOST=0.0.0.0 \
    DIONYSUS_VPS_PORT=8000
VOLUME /data
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=5s --start-period=30s --retries=5 CMD ["dionysus", "vps", "health"]
STOPSIGNAL SIGTERM
ENTRYPOINT ["dionysus"]
CMD ["vps", "serve"]
