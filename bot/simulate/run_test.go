package simulate

import (
	"context"
	"os"
	"testing"
)

func TestScratch(t *testing.T) {
	sc, err := Load("../../fixtures/scenarios/" + os.Getenv("SC") + ".yaml")
	if err != nil {
		t.Fatal(err)
	}
	r, err := Run(context.Background(), sc, Options{})
	if err != nil {
		t.Fatal(err)
	}
	r.WriteText(os.Stdout, false)
}
