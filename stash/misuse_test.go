package stash_test

import (
	"bytes"
	"context"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
)

// An Engine that New did not build, nil or zero, is a mistake in the calling
// code: every operation says so in an error, and none panics.
func TestEngineNotMadeByNew(t *testing.T) {
	ctx := context.Background()
	addr := "mem://default/x." + strings.Repeat("0", 64)
	for _, c := range []struct {
		name string
		e    *stash.Engine
	}{{"nil", nil}, {"zero", new(stash.Engine)}} {
		t.Run(c.name, func(t *testing.T) {
			e := c.e
			ops := map[string]func() error{
				"Create":     func() error { _, err := e.Create(ctx, "x", []byte("payload")); return err },
				"CreateFrom": func() error { _, err := e.CreateFrom(ctx, "x", bytes.NewReader([]byte("payload"))); return err },
				"Retrieve":   func() error { _, err := e.Retrieve(ctx, addr); return err },
				"Open":       func() error { _, err := e.Open(ctx, addr); return err },
				"Stat":       func() error { _, err := e.Stat(ctx, addr); return err },
				"Delete":     func() error { return e.Delete(ctx, addr) },
				"List":       func() error { return e.List(ctx, "", func(*stash.Stash) error { return nil }) },
				"Sweep":      func() error { _, err := e.Sweep(ctx); return err },
				"Share":      func() error { _, err := e.Share(ctx, addr, 0); return err },
				"TrustsLink": func() error { return e.TrustsLink("https://example.com/default/x." + strings.Repeat("0", 64)) },
			}
			for name, op := range ops {
				func() {
					defer func() {
						if r := recover(); r != nil {
							t.Errorf("%s panics: %v", name, r)
						}
					}()
					if err := op(); err == nil || !strings.Contains(err.Error(), "not built by") {
						t.Errorf("%s: %v; want an error that says the engine was not built by New", name, err)
					}
				}()
			}
			if err := e.Close(); err != nil {
				t.Errorf("Close: %v", err)
			}
			if e.Namespace() != "" || e.MaxSize() != 0 || len(e.Schemes()) != 0 {
				t.Errorf("accessors: %q, %d, %v; want zero values", e.Namespace(), e.MaxSize(), e.Schemes())
			}
			if d, ok := e.Backend("mem"); d != nil || ok {
				t.Errorf("Backend: %v, %v", d, ok)
			}
		})
	}
}
