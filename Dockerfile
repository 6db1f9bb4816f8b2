# syntax=docker/dockerfile:1
# Build stage: dependencies are compiled in a layer of their own, so code changes rebuild fast.
FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY Cargo.toml Cargo.lock ./
RUN mkdir src && echo 'fn main() {}' > src/main.rs && touch src/lib.rs \
    && cargo build --release --locked \
    && rm -rf src
COPY src ./src
COPY migrations ./migrations
RUN touch src/main.rs src/lib.rs && cargo build --release --locked

# Runtime stage: a small Debian base, no shell tools needed, a non-root user.
FROM debian:bookworm-slim
RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/* \
    && useradd --system --uid 10001 --home-dir /var/lib/c4c-scim-bridge --create-home bridge
COPY --from=build /src/target/release/c4c-scim-bridge /usr/local/bin/c4c-scim-bridge
USER 10001
WORKDIR /var/lib/c4c-scim-bridge
# The embedded store lives under ./data: mount a volume there (or use PostgreSQL) so that the
# root filesystem can be read-only.
VOLUME ["/var/lib/c4c-scim-bridge/data"]
ENV C4C_SCIM_BRIDGE__SERVER__LISTEN=0.0.0.0:8080
EXPOSE 8080
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
    CMD ["c4c-scim-bridge", "health", "--url", "http://127.0.0.1:8080/healthz"]
ENTRYPOINT ["c4c-scim-bridge"]
CMD ["serve"]
