# graftcert — see README.md. Every target installs or builds what it needs.
SHELL := /bin/bash
GO ?= go
BIN := bin/graftcert
TESTDATA ?= $(abspath ../shared/testdata)
export GRAFTCERT_TESTDATA := $(TESTDATA)
GOTEST_TIMEOUT ?= 18m

.PHONY: all build run test test-full test-go bench fuzz vet clean

all: build

build:
	$(GO) build -o $(BIN) ./cmd/graftcert

# For now: certify the bundled default model on the first 10 bundled samples.
run: build
	./$(BIN) bounds --model static/demo/mnist_6_100.onnx --data static/demo/mnist_X.npy \
		--labels static/demo/mnist_y.npy --eps 0.026 --method crown --count 10

vet:
	test -z "$$(gofmt -l $$(git ls-files '*.go'))" || { gofmt -l $$(git ls-files '*.go'); echo "gofmt needed"; exit 1; }
	$(GO) vet ./...

test: vet test-go

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
	rm -rf bin
