# syntax=docker/dockerfile:1
#
# backstop container image: a release build on Debian bookworm, run on
# distroless cc (bookworm's glibc and libgcc, CA certificates, no shell, no
# package manager) as the unprivileged user 65532.
#
#   docker build -t registry.example.com/backstop:0.1.0 .
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

FROM rust:1.95-bookworm AS builder
WORKDIR /build
# Only what the build reads: the manifests, the library and binary, and the
# bench sources that Cargo.toml declares as targets.
COPY Cargo.toml Cargo.lock ./
COPY src ./src
COPY bench ./bench
# The crate registry and target directory persist between builds in
# BuildKit cache mounts, so an edit recompiles backstop, not its
# dependencies. The binary is copied out of the cache in the same step.
RUN --mount=type=cache,target=/usr/local/cargo/registry \
    --mount=type=cache,target=/build/target \
    cargo build --release --locked \
 && install -D -m 0755 target/release/backstop /out/backstop

# Same Debian release as the builder, so the binary's glibc matches.
FROM gcr.io/distroless/cc-debian12:nonroot
LABEL org.opencontainers.image.title="backstop" \
      org.opencontainers.image.description="Sidecar that probes a service, computes SLIs and burn rates, and rolls back a bad release" \
      org.opencontainers.image.licenses="Apache-2.0"
COPY --from=builder /out/backstop /usr/local/bin/backstop
# The nonroot image's user, by number so that `runAsNonRoot` can verify it.
USER 65532:65532
# Admin server: /metrics, /healthz, /readyz, /status.
EXPOSE 9464
ENTRYPOINT ["/usr/local/bin/backstop"]
# The layout of k8s/components/backstop: configuration mounted at /etc/backstop.
CMD ["run", "--config", "/etc/backstop/backstop.yaml"]
