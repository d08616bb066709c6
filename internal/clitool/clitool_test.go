package clitool

import (
	"slices"
	"testing"
)

func TestEnviron(t *testing.T) {
	t.Setenv("CLITOOL_KEEP", "k")
	t.Setenv("CLITOOL_DROP", "d")
	t.Setenv("CLITOOL_SET", "old")
	env := Environ([]string{"CLITOOL_DROP", "CLITOOL_SET=new", "CLITOOL_NEW=n"})
	for _, want := range []string{"CLITOOL_KEEP=k", "CLITOOL_SET=new", "CLITOOL_NEW=n"} {
		if !slices.Contains(env, want) {
			t.Errorf("Environ lacks %s", want)
		}
	}
	for _, kv := range env {
		if kv == "CLITOOL_DROP=d" || kv == "CLITOOL_SET=old" || kv == "CLITOOL_DROP" {
			t.Errorf("Environ kept %s", kv)
		}
	}
}

// TestNeedSkips: a missing tool skips with a one-line reason outside CI.
func TestNeedSkips(t *testing.T) {
	t.Setenv("CI", "")
	skipped := false
	t.Run("missing", func(t *testing.T) {
		defer func() { skipped = t.Skipped() }()
		need(t, "/nonexistent/tool", false, "tool")
		t.Error("need returned for a missing tool")
	})
	if !skipped {
		t.Error("a missing tool did not skip")
	}
}
