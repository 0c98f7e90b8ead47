# syntax=docker/dockerfile:1
#
# dontinterrupt: a static binary on distroless, running as the non-root user 65532.
#
#   docker build -t dontinterrupt .
#   docker run --rm -p 8080:8080 dontinterrupt            # sandbox mode, embedded store in /data
#
# The README's Operations section has the production settings (Redis, keyset file).

FROM golang:1.26 AS build
WORKDIR /src
# Dependencies first, so a code change does not download them again.
COPY go.mod go.sum ./
RUN --mount=type=cache,target=/go/pkg/mod go mod download
COPY . .
RUN --mount=type=cache,target=/go/pkg/mod \
    --mount=type=cache,target=/root/.cache/go-build \
    CGO_ENABLED=0 GOOS=linux go build -trimpath -ldflags "-s -w" -o /out/dontinterrupt ./cmd/dontinterrupt \
 && mkdir -p /out/data

# static-debian12 holds CA certificates, tzdata and /etc/passwd with the nonroot user (65532).
FROM gcr.io/distroless/static-debian12:nonroot
COPY --from=build /out/dontinterrupt /dontinterrupt
# A writable home for the embedded store when no volume or Redis is given (a named volume
# mounted here inherits the ownership).
COPY --from=build --chown=65532:65532 /out/data /data
# The defaults data/dontinterrupt.db and data/keyset.json resolve to /data.
WORKDIR /
USER 65532:65532
ENV DI_ADDR=:8080 \
    DI_LOG_FORMAT=json
EXPOSE 8080
ENTRYPOINT ["/dontinterrupt"]
CMD ["serve"]
