package simulate

import (
	"errors"
	"fmt"
	"os"

	shipped "github.com/alertengine/alertengine/fixtures"
)

// ErrNoScenario: Open found neither a scenario file nor a built-in scenario of that name.
var ErrNoScenario = errors.New("no such scenario file, and no built-in scenario of that name")

// Builtins are the names of the scenarios shipped in the binary.
func Builtins() []string { return shipped.GovernanceScenarios() }

// Open reads the scenario file at path or, when there is no such file, the built-in
// scenario of that name (see Builtins).
func Open(path string) (*Scenario, error) {
	if _, err := os.Stat(path); err == nil {
		return Load(path)
	}
	if b, ok := shipped.GovernanceScenario(path); ok {
		return Parse("fixtures/scenarios/"+path+".yaml", b, ".")
	}
	return nil, fmt.Errorf("%s: %w", path, ErrNoScenario)
}
