package sdk

import (
	"testing"

	"github.com/alertengine/alertengine/fixtures/testkit"
)

// TestMain lists the package's skipped tests, with their reasons, after the run: plain
// `go test ./...` shows them even though it hides a passing package's output.
func TestMain(m *testing.M) { testkit.Main(m) }
