package main

import (
	"testing"

	"github.com/alertengine/alertengine/fixtures/testkit"
)

// TestMain runs the tests through testkit.Main: skipped tests are listed, with their
// reasons, in plain `go test ./...` output, and the tests marked parallel (which mostly
// wait) run more at once than one per CPU.
func TestMain(m *testing.M) { testkit.Main(m) }
