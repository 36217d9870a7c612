# syntax=docker/dockerfile:1
# The production image: the gateway built without the stubs (`--no-default-features`) in the
# `dist` profile (fat LTO, one codegen unit), on a distroless runtime (glibc, CA certificates, no
# shell, no package manager) as a non-root user. Build from the repository root:
#   docker build -t tai-gateway .
#   docker run --rm -p 8080:8080 -p 127.0.0.1:9901:9901 tai-gateway
# The image's config is deploy/docker/gateway.yaml at /etc/tai-gateway/gateway.yaml; mount a
# folder over /etc/tai-gateway to replace it.

FROM rust:1.95-slim-bookworm AS build
WORKDIR /src
COPY . .
# Cache mounts keep the crates.io downloads and compiled dependencies between builds; the
# binary is copied out of the cache so the next stage can take it.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/src/target \
    cargo build --locked --profile dist --no-default-features --bin tai-gateway \
    && install -D -m 0755 target/dist/tai-gateway /out/tai-gateway

FROM gcr.io/distroless/cc-debian12:nonroot
COPY --from=build /out/tai-gateway /usr/local/bin/tai-gateway
COPY proto /usr/share/tai-gateway/proto
COPY deploy/docker/gateway.yaml /etc/tai-gateway/gateway.yaml
# distroless' `nonroot` user (uid and gid 65532), by number so runAsNonRoot can check it.
USER 65532:65532
# The public listener and the admin server (probes, /metrics) of deploy/docker/gateway.yaml.
EXPOSE 8080 9901
# No curl in the image: the binary probes its own admin server (exit 0 on a 2xx answer).
HEALTHCHECK --interval=10s --timeout=5s --start-period=10s --retries=3 \
    CMD ["/usr/local/bin/tai-gateway", "health", "--url", "http://127.0.0.1:9901/healthz", "--timeout", "3s"]
ENTRYPOINT ["/usr/local/bin/tai-gateway"]
CMD ["run", "--config", "/etc/tai-gateway/gateway.yaml"]
