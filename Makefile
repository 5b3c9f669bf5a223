# graftcert — see README.md. Every target installs or builds what it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin/graftcert
TESTDATA ?= $(abspath ../shared/testdata)
export GRAFTCERT_TESTDATA := $(TESTDATA)
GOTEST_TIMEOUT ?= 18m

.PHONY: all build run run-cli test test-full test-go bench fuzz vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/graftcert

# The native job on the bundled default: CROWN on the first 10 bundled MNIST samples.
run-cli: build
	./$(BIN) bounds --model static/demo/mnist_6_100.onnx --data static/demo/mnist_X.npy \
		--labels static/demo/mnist_y.npy --eps 0.026 --method crown --count 10

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

test: vet vet-wasm edge-deps test-go test-wasm test-web

test-go: export GRAFTCERT_EDGE_REQUIRE = $(EDGE_REQUIRE)
test-go:
	$(GO) test -timeout $(GOTEST_TIMEOUT) ./...

test-full: vet
	GRAFTCERT_FULL=1 $(GO) test -timeout 120m ./...

FUZZTIME ?= 15s
fuzz:
	@set -e; for pkg in $$($(GO) list ./core/...); do \
	  for f in $$($(GO) test -list '^Fuzz' $$pkg | grep '^Fuzz' || true); do \
	    echo "fuzz $$pkg $$f"; $(GO) test -run '^$$' -fuzz "^$$f$$" -fuzztime $(FUZZTIME) $$pkg; \
	  done; done

bench: build
	./$(BIN) bench --testdata $(TESTDATA)

clean:
	rm -rf bin build/edge

# ---- Complete verification (issue 5) ----------------------------------------------
.PHONY: bench-vnncomp bench-verify
# `make test` needs no change: the quick VNN-COMP subset (TestVNNCOMPQuick, well under
# a minute), the exact-enumeration, attack and timeout tests run in `go test ./core/bab`;
# `make test-full` (GRAFTCERT_FULL=1) adds TestVNNCOMPFull, every shared instance at the
# competition's timeouts (about 2.5 hours on 2 cores; raise its -timeout if needed).

VNNCOMP_BENCHMARKS ?= test acasxu mnist_fc oval21
VNNCOMP_SCALE ?= 1
VNNCOMP_OUT ?= build/vnncomp

# Solved counts per VNN-COMP benchmark at the competition's timeouts (instances.csv
# column 3, times VNNCOMP_SCALE) beside alpha-beta-CROWN's answers recorded in
# ../shared/testdata/vnncomp/*/abcrown.csv, and any unsound answer (a report, not a
# test). Per-instance results: $(VNNCOMP_OUT)/<benchmark>.csv and the result files in
# $(VNNCOMP_OUT)/<benchmark>-cex/.
bench-vnncomp: build
	@mkdir -p $(VNNCOMP_OUT)
	@set -e; for b in $(VNNCOMP_BENCHMARKS); do \
	  ./$(BIN) vnncomp --instances $(TESTDATA)/vnncomp/$$b/instances.csv \
	    --timeout-scale $(VNNCOMP_SCALE) --out $(VNNCOMP_OUT)/$$b.csv \
	    --cex-dir $(VNNCOMP_OUT)/$$b-cex 2>$(VNNCOMP_OUT)/$$b.log; \
	done

# Classification mode, 60 s per sample (the paper's protocol): alpha-CROWN alone
# ("before") and complete verification ("after") on samples 0-99 of mnist_6_100
# (eps 0.026) and cifar_conv_small (eps 2/255). About 3 hours on 2 cores.
VERIFY_COUNT ?= 100
bench-verify: build
	@mkdir -p $(VNNCOMP_OUT)
	@set -e; for m in "mnist_6_100 mnist_eran 0.026" "cifar_conv_small cifar_sdp 0.00784313725490196"; do \
	  set -- $$m; \
	  ./$(BIN) bounds --model $(TESTDATA)/models/$$1.onnx --data $(TESTDATA)/data/$$2_X.npy \
	    --labels $(TESTDATA)/data/$$2_y.npy --eps $$3 --method alpha-crown --count $(VERIFY_COUNT) | tail -1; \
	  ./$(BIN) verify --model $(TESTDATA)/models/$$1.onnx --data $(TESTDATA)/data/$$2_X.npy \
	    --labels $(TESTDATA)/data/$$2_y.npy --eps $$3 --count $(VERIFY_COUNT) --timeout 60 \
	    --json > $(VNNCOMP_OUT)/verify-$$1.json 2> $(VNNCOMP_OUT)/verify-$$1.log; \
	  tail -1 $(VNNCOMP_OUT)/verify-$$1.log; \
	done

# ---- Makefile fragment for issue 7 (the in-browser certifier) -------------------------
# Merge into the Makefile. It assumes the existing variables GO, BIN (bin/graftcert) and
# the `build` target. `make run` REPLACES the current `run` target.
#
# Files: wasm/ (worker, GOOS=js), ui/ (vugu page, GOOS=js), static/ (page), web-test/
# (playwright-core tests and bench), wasm_exec.js (root copy, checked by a Go test).
# Built, not committed (add to .gitignore): /static/*.wasm (already there) and
# /static/wasm_exec.js.

WASM_LDFLAGS := -s -w
WEB_WASM := static/worker.wasm static/ui.wasm static/gemm.wasm
CHROMIUM ?= /usr/bin/chromium
WEB_TEST_TIMEOUT ?= 300

.PHONY: web web-gen web-demo wasm-exec run test-web test-wasm web-deps bench-web web-screenshot vet-wasm gemm-wasm

# The browser page: the wasm files and the runtime glue, into static/.
web: static/wasm_exec.js gemm-wasm
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='$(WASM_LDFLAGS)' -o static/worker.wasm ./wasm
	GOOS=js GOARCH=wasm $(GO) build -trimpath -ldflags='$(WASM_LDFLAGS)' -o static/ui.wasm ./ui
	@for f in $(WEB_WASM); do printf '%-20s %8d bytes, %8d gzipped\n' $$f $$(stat -c %s $$f) $$(gzip -9c $$f | wc -c); done

# The workers' WebAssembly SIMD matrix kernel: written by a Go program (package
# wasm/gemmsimd assembles it byte by byte), so no wasm toolchain is needed.
gemm-wasm:
	$(GO) run ./wasm/gemmsimd/gen -o static/gemm.wasm

static/wasm_exec.js: wasm_exec.js
	cp wasm_exec.js static/wasm_exec.js

# wasm_exec.js must be the toolchain's (wasm/wasmexec_test.go fails otherwise).
wasm-exec:
	cp "$$($(GO) env GOROOT)/lib/wasm/wasm_exec.js" wasm_exec.js

# Regenerate the committed generated files: ui/*_gen.go from the .vugu components
# (vugugen run natively, then marked js-only and gofmt'ed; ui/gen_test.go checks it)
# and static/vugu-render.js (vugu's DOM helper as a file, for the CSP; checked by
# ui/cmd/vugujs's test).
web-gen:
	$(GO) tool vugugen -skip-go-mod -skip-main ui
	@for f in ui/*_gen.go; do { printf '//go:build js && wasm\n\n'; cat $$f; } > $$f.tmp && mv $$f.tmp $$f; done
	gofmt -w ui/*_gen.go
	$(GO) run ./ui/cmd/vugujs -o static/vugu-render.js

# The Graft panel's training subset (static/demo/train/, committed): the first 2000
# MNIST training images from the GoMNIST module.
web-demo:
	$(GO) run ./wasm/cmd/mkdemo

# Build everything and serve the page on http://127.0.0.1:8080 (prints the URL).
run: build web
	./$(BIN) serve --addr 127.0.0.1:8080 --dir static

# The worker and the page also have to vet for GOOS=js.
vet-wasm:
	GOOS=js GOARCH=wasm $(GO) vet ./wasm/... ./ui/...

# The worker's tests compiled to js/wasm and run under node (go_js_wasm_exec): the
# bounds match auto_LiRPA's reference there too, a panic becomes a message, and the
# verify budget holds although no timer fires inside busy wasm code (about 15 s).
# Then the SIMD matrix kernel (static/gemm.wasm, loaded by wasm/gemmsimd/run_node.js as
# the page's worker loads it) against the pure-Go kernel, bit for bit (a few seconds).
test-wasm: gemm-wasm
	GOOS=js GOARCH=wasm $(GO) test -exec="$$($(GO) env GOROOT)/lib/wasm/go_js_wasm_exec" -timeout 5m \
		-run 'TestBoundsMatchReference|TestPanicBecomesError|TestVerifyTimeout|TestErrorsKeepWorkerUsable|TestDgemm|TestBlockKernel|TestPackKernel' ./wasm/worker/ ./core/blas/
	GOOS=js GOARCH=wasm $(GO) test -exec="node --stack-size=8192 $(abspath wasm/gemmsimd/run_node.js)" -timeout 5m ./wasm/gemmsimd/

# Browser test dependencies: Debian chromium (only when missing) and the pinned
# playwright-core from web-test/package-lock.json. If chromium cannot be installed the
# browser tests skip themselves (and say so).
web-deps:
	@test -x $(CHROMIUM) || { apt-get update && apt-get install -y chromium; } || \
		echo "warning: chromium could not be installed; the browser tests will be skipped"
	cd web-test && npm ci --no-audit --no-fund

# Real-browser tests (about 40 s): load the page, certify 10 samples with 2 workers
# and compare with the CLI's JSON, upload a shared model and a corrupt one, cancel an
# alpha-CROWN run, draw a digit, graft end to end, and check every network request.
test-web: build web web-deps
	cd web-test && GRAFTCERT_BIN=$(abspath $(BIN)) GRAFTCERT_TESTDATA=$(TESTDATA) CHROMIUM=$(CHROMIUM) \
		timeout $(WEB_TEST_TIMEOUT) node --test --test-concurrency=1 browser.test.mjs

# Report, not a test: wasm vs native per-sample time (CROWN, alpha-CROWN, 3 models),
# 1 vs 2 workers throughput, page weight. BENCH_QUICK=1 for fewer samples.
bench-web: build web web-deps
	cd web-test && GRAFTCERT_BIN=$(abspath $(BIN)) GRAFTCERT_TESTDATA=$(TESTDATA) CHROMIUM=$(CHROMIUM) node bench.mjs

# The README's screenshot: the page after a 10-sample CROWN run.
web-screenshot: build web web-deps
	mkdir -p docs
	cd web-test && GRAFTCERT_BIN=$(abspath $(BIN)) GRAFTCERT_TESTDATA=$(TESTDATA) CHROMIUM=$(CHROMIUM) \
		GRAFTCERT_SCREENSHOT=$(abspath docs/screenshot.png) node --test --test-concurrency=1 \
		--test-name-pattern='page loads|first 10 samples' browser.test.mjs

# What `make test` must run for this issue, in addition to `go vet ./...` and
# `go test ./...` (which already cover wasm/worker, wasm (wasm_exec.js check),
# wasm/cmd/mkdemo, ui (report/chart/generated-code checks), ui/cmd/vugujs and
# cmd/graftcert's serve tests):
#
#   test: vet vet-wasm test-go test-wasm test-web
#
# i.e. add `vet-wasm`, `test-wasm` and `test-web` to the prerequisites of `test`.
# test-wasm needs node (on the machine; Debian's nodejs otherwise). test-web builds
# bin/graftcert and the wasm files itself, installs chromium and playwright-core, and
# takes about 60 s plus installs.

# ---- Edge service and scale-out (issue 8). Paste into the Makefile. -------------------
# Integration with `make test` (two edits to the existing targets):
#   1. test: vet edge-deps test-go
#        (edge-deps installs workerd from edge/package-lock.json with npm ci, or says it
#         skips when npm is absent)
#   2. test-go: export GRAFTCERT_EDGE_REQUIRE = $(EDGE_REQUIRE)
#        (with npm present the workerd tests in ./edge/workerd must run: a missing or
#         broken workerd fails them instead of skipping; `go test ./...` in test-go then
#         runs them with the rest — nothing runs twice)
# Also add to .PHONY: edge edge-deps edge-build test-edge bench-edge docker-bin docker
# and to `clean`: rm -rf build/edge

.PHONY: edge edge-deps edge-build test-edge bench-edge docker-bin docker

EDGE_ADDR ?= 127.0.0.1:8787
EDGE_NPM := $(shell command -v npm 2>/dev/null)
EDGE_REQUIRE := $(if $(EDGE_NPM),1,)

# workerd (Cloudflare's open-source Workers runtime), pinned in edge/package-lock.json;
# reinstalled only when the lock file changes.
edge/node_modules/.graftcert-installed: edge/package-lock.json
	cd edge && npm ci --no-audit --no-fund --loglevel=error
	touch $@

ifneq ($(EDGE_NPM),)
edge-deps: edge/node_modules/.graftcert-installed
else
edge-deps:
	@echo "npm not found: workerd not installed, the edge service tests will be skipped"
endif

# Build the worker (GOOS=js GOARCH=wasm, github.com/syumai/workers) and serve it with
# the page under workerd on http://$(EDGE_ADDR)/ (loopback only). Ctrl-C stops.
edge: edge-deps
	$(GO) run ./edge/workerd -addr $(EDGE_ADDR)

# Build only (build/edge/: app.wasm, wasm_exec.js, worker.mjs, config.capnp), e.g.
# before `cd edge && npx wrangler@4 deploy`.
edge-build:
	$(GO) run ./edge/workerd -build-only

# Just the edge tests: the service under workerd (edge/workerd), the API handler
# (edge/api), and sharding, merge and --remote (cmd/graftcert).
test-edge: edge-deps
	GRAFTCERT_EDGE_REQUIRE=$(EDGE_REQUIRE) $(GO) test -timeout 10m ./edge/...
	$(GO) test -timeout 10m -run 'Shard|Merge|Remote' ./cmd/graftcert

# Throughput of the local edge service and the --remote fan-out speedup (a report).
bench-edge: edge-deps
	GRAFTCERT_EDGE_REQUIRE=$(EDGE_REQUIRE) GRAFTCERT_EDGE_BENCH=1 $(GO) test -timeout 30m -run Throughput -v ./edge/workerd

# The container image (Dockerfile: FROM scratch + the static binary).
docker-bin:
	CGO_ENABLED=0 $(GO) build -trimpath -ldflags='-s -w' -o bin/graftcert-static ./cmd/graftcert
	cp /etc/ssl/certs/ca-certificates.crt bin/ca-certificates.crt

docker: docker-bin
	docker build -t graftcert .
