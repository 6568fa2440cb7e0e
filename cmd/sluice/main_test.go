package main

import (
	"errors"
	"strings"
	"testing"
	"time"
)

func TestUsage(t *testing.T) {
	// No command, an unknown one: usage on standard error, exit status 2.
	for _, args := range [][]string{nil, {"frobnicate"}} {
		_, stderr, err := runCLI(t, args...)
		var ue *usageError
		if !errors.As(err, &ue) {
			t.Errorf("sluice %q: err %v, want a usage error", args, err)
		}
		if code := exitCode(err, &strings.Builder{}); code != 2 {
			t.Errorf("sluice %q: exit code %d, want 2", args, code)
		}
		mustContain(t, "the usage", stderr, "Usage: sluice COMMAND", "reset", "lag", "query", "describe")
	}
	// help lists the commands; help COMMAND and COMMAND -h its flags, on
	// standard output, exit status 0.
	stdout, _, err := runCLI(t, "help")
	if err != nil {
		t.Fatal(err)
	}
	mustContain(t, "sluice help", stdout, "reset", "lag", "query", "describe")
	for cmd, flags := range map[string][]string{
		"reset":    {"-application-id", "-input-topics", "-to-datetime", "-by-duration", "-dry-run", "-force", "kafka-streams-application-reset"},
		"lag":      {"-application-id", "-json", "-topics"},
		"query":    {"-url", "-range", "-window", "/stores/STORE/keys/KEY"},
		"describe": {"-url", "-format"},
	} {
		stdout, _, err := runCLI(t, "help", cmd)
		if err != nil {
			t.Errorf("sluice help %s: %v", cmd, err)
		}
		mustContain(t, "sluice help "+cmd, stdout, append([]string{"Usage: sluice " + cmd}, flags...)...)
		_, stderr, err := runCLI(t, cmd, "-h")
		if err != nil {
			t.Errorf("sluice %s -h: %v", cmd, err)
		}
		mustContain(t, "sluice "+cmd+" -h", stderr, "Usage: sluice "+cmd)
	}
	// A bad flag is a usage error naming it.
	_, _, err = runCLI(t, "lag", "-nope")
	var ue *usageError
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "nope") {
		t.Errorf("lag -nope: %v, want a usage error naming the flag", err)
	}
	_, _, err = runCLI(t, "reset", "-brokers", "127.0.0.1:1")
	if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-application-id") {
		t.Errorf("reset without -application-id: %v, want a usage error naming it", err)
	}
}

func TestRetryAfter(t *testing.T) {
	now := time.Date(2026, 12, 7, 10, 0, 0, 0, time.UTC)
	for h, want := range map[string]time.Duration{
		"":                              time.Second,
		"2":                             2 * time.Second,
		"0":                             0,
		"600":                           10 * time.Second,
		"soon":                          time.Second,
		"Mon, 07 Dec 2026 10:00:03 GMT": 3 * time.Second,
		"Mon, 07 Dec 2026 09:00:00 GMT": 0,
	} {
		if got := retryAfter(h, now); got != want {
			t.Errorf("retryAfter(%q) = %v, want %v", h, got, want)
		}
	}
}

func TestURLRequired(t *testing.T) {
	for _, args := range [][]string{{"describe"}, {"query", "counts", "k"}, {"describe", "-url", "127.0.0.1:8080"}} {
		_, _, err := runCLI(t, args...)
		var ue *usageError
		if !errors.As(err, &ue) || !strings.Contains(err.Error(), "-url") {
			t.Errorf("sluice %q: %v, want a usage error about -url", args, err)
		}
	}
}
