# Sluice: make test, make lint, make bench, make run.
GO          ?= go
# staticcheck runs from the Go module proxy at a pinned version: nothing to
# install by hand.
STATICCHECK ?= honnef.co/go/tools/cmd/staticcheck@v0.8.2
BENCHTIME   ?= 1s

.PHONY: all test lint bench run

all: lint test

## test: unit, driver and embedded-broker tests, with the race detector, in random order
test:
	$(GO) test -race -shuffle=on ./...

## lint: gofmt, go vet, staticcheck
lint:
	@out=$$(gofmt -l $$(git ls-files '*.go')); if [ -n "$$out" ]; then echo "gofmt would change:"; echo "$$out"; exit 1; fi
	$(GO) vet ./...
	GOFLAGS= $(GO) run $(STATICCHECK) ./...

## bench: records/s and allocations per record of the hot paths
bench:
	$(GO) test -run '^$$' -bench . -benchmem -benchtime $(BENCHTIME) ./...

## run: the flagship example, word count, on generated input
run:
	$(GO) run ./examples/wordcount -generate 100000
