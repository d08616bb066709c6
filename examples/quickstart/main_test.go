package main

import (
	"bytes"
	"context"
	"os"
	"strings"
	"testing"

	"go.uber.org/goleak"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// wantOutput is the sample output the README shows under the program.
const wantOutput = `sent 1100000 bytes as file://default/orders.511781411160027b38bf4a0d8a82886b331c3ae93a256193778228d424878bfc
received 1100000 bytes, intact: true
`

// TestRun runs the quickstart and checks its output, word for word.
func TestRun(t *testing.T) {
	var out bytes.Buffer
	if err := run(context.Background(), &out); err != nil {
		t.Fatalf("run: %v", err)
	}
	if out.String() != wantOutput {
		t.Fatalf("output:\n%s\nwant:\n%s", out.String(), wantOutput)
	}
}

// TestREADME: the README's quickstart is this program, byte for byte, and
// its sample output is what the program prints, so neither can drift.
func TestREADME(t *testing.T) {
	readme, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	src, err := os.ReadFile("main.go")
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(string(readme), "```go\n"+string(src)+"```\n") {
		t.Error("README.md's quickstart block differs from examples/quickstart/main.go: copy the file into it")
	}
	if !strings.Contains(string(readme), "```\n$ go run ./examples/quickstart\n"+wantOutput+"```\n") {
		t.Error("README.md's quickstart output block differs from what the program prints")
	}
}
