# dontinterrupt: the two commands a newcomer needs are `make run` and `make test`.
GO      ?= go
PKGS    ?= ./...

.PHONY: run build test test-cluster bench bench-full lint fmt

## run: start the service on the embedded store (sandbox mode when no provider credentials are set)
run:
	$(GO) run ./cmd/dontinterrupt

## build: build the binary into bin/
build:
	$(GO) build -o bin/dontinterrupt ./cmd/dontinterrupt

## test: vet, then every test of every package with the race detector (needs Redis on 127.0.0.1:6379; .ci/run starts one)
test:
	$(GO) vet $(PKGS)
	$(GO) test -race -count=1 -timeout 15m $(PKGS)

## test-cluster: the multi-process kill test (three processes on a private redis-server, one killed mid-burst; needs redis-server)
test-cluster:
	DI_TEST_CLUSTER=1 $(GO) test -race -count=1 -timeout 10m -v -run '^TestClusterKillOneReplica$$' ./cmd/dontinterrupt/

## bench: the Go benchmarks (planner, store), then the load simulator at sizes this 2-core
## machine runs in about a quarter of an hour (see README.md, "Load simulator")
LOADSIM_BENCH ?= -people 2000 -day-people 2000 -ref-day-people 200 -gap 1m -warmup 70s
bench:
	$(GO) test -run '^$$' -bench . -benchmem -count=1 $(PKGS)
	$(GO) run ./cmd/loadsim $(LOADSIM_BENCH)

## bench-full: the load simulator at the acceptance sizes (10,000 people in real time, 100,000
## over a simulated day on Redis, a 2,000-write burst); takes hours, see README.md
LOADSIM_FULL ?=
bench-full:
	$(GO) run ./cmd/loadsim $(LOADSIM_FULL)

## lint: gofmt (fails on unformatted files) and go vet
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go' 2>/dev/null || find . -name '*.go')); \
	if [ -n "$$out" ]; then echo "gofmt needed:"; echo "$$out"; exit 1; fi
	$(GO) vet $(PKGS)

## fmt: format every Go file
fmt:
	gofmt -w $$(git ls-files '*.go')
