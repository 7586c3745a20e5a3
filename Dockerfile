# syntax=docker/dockerfile:1
# Sluice images, multi-stage on Debian 12 (bookworm), the same packages the build machine uses.
#   docker build --target sluiced   -t sluice/sluiced:$(cat VERSION) .
#   docker build --target pgbouncer -t sluice/pgbouncer:$(cat VERSION) .
# No image is built by the tests (no registry here): test_deploy_docker checks statically that
# the runtime stage's packages provide every shared library the built binaries link, and every
# command the Kubernetes manifests run in the image.

FROM debian:bookworm AS build
RUN apt-get update && apt-get install -y --no-install-recommends \
        make clang llvm gcc libc6-dev pkg-config libbpf-dev libxdp-dev bpftool libelf-dev \
        zlib1g-dev liburing-dev librdkafka-dev libpq-dev libhiredis-dev libjansson-dev \
        libinih-dev libcurl4-openssl-dev ca-certificates \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY . .
# the daemon, the CLI and the XDP object only (tools/setup is for development machines)
RUN make -j"$(nproc)" SETUP=true .output/sluiced .output/sluicectl .output/admission.bpf.o

# sluiced: workers run it as uid 10001 with no capabilities; the ingress DaemonSet sets
# runAsUser 0 because Kubernetes grants added capabilities (BPF, NET_ADMIN, PERFMON) to uid 0
# only, and drops every other one.
FROM debian:bookworm-slim AS sluiced
# one package per shared library sluiced and sluicectl link (their own dependencies follow)
RUN apt-get update && apt-get install -y --no-install-recommends \
        libbpf1 libxdp1 libelf1 liburing2 librdkafka1 libpq5 libhiredis0.14 libjansson4 \
        libinih1 libcurl4 ca-certificates \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10001 sluice \
    && useradd --uid 10001 --gid sluice --no-create-home --home-dir /var/lib/sluice \
        --shell /usr/sbin/nologin sluice
COPY --from=build /src/.output/sluiced /src/.output/sluicectl /usr/local/bin/
COPY --from=build /src/.output/admission.bpf.o /usr/local/lib/sluice/
COPY VERSION /usr/local/share/doc/sluice/
USER 10001
ENTRYPOINT ["/usr/local/bin/sluiced"]

# PgBouncer 1.18 from Debian, as a non-root user (deploy/k8s/workers/pgbouncer.yaml)
FROM debian:bookworm-slim AS pgbouncer
RUN apt-get update && apt-get install -y --no-install-recommends pgbouncer \
    && rm -rf /var/lib/apt/lists/*
RUN groupadd --gid 10002 pgbouncer \
    && useradd --uid 10002 --gid pgbouncer --no-create-home --shell /usr/sbin/nologin pgbouncer
USER 10002
ENTRYPOINT ["/usr/sbin/pgbouncer"]
