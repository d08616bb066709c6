package main

import (
	"os"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"testing"
)

// The README's exit-status table and "claimstash help exit-codes" list the
// same statuses, and both list every status the classifier returns.
func TestExitCodesREADME(t *testing.T) {
	b, err := os.ReadFile("../../README.md")
	if err != nil {
		t.Fatal(err)
	}
	s := string(b)
	i := strings.Index(s, "**Exit statuses**")
	if i < 0 {
		t.Fatal("README has no exit-status table")
	}
	s = s[i:]
	if j := strings.Index(s, "\n\n**"); j >= 0 {
		s = s[:j]
	}
	var readme []string
	for _, m := range regexp.MustCompile(`(?m)^\| (\d+) \|`).FindAllStringSubmatch(s, -1) {
		readme = append(readme, m[1])
	}
	var help []string
	for _, m := range regexp.MustCompile(`(?m)^  (\d+) `).FindAllStringSubmatch(exitCodesHelp, -1) {
		help = append(help, m[1])
	}
	if len(readme) == 0 || !slices.Equal(readme, help) {
		t.Errorf("README lists exit statuses %v, help exit-codes %v", readme, help)
	}
	// Each classified status, then 128 + SIGINT and 128 + SIGPIPE.
	for _, code := range []int{exitOK, exitFailure, exitUsage, exitNotFound, exitIntegrity, exitNoTarget, exitRefused, 130, 141} {
		if !slices.Contains(help, strconv.Itoa(code)) {
			t.Errorf("help exit-codes does not list %d", code)
		}
	}
}
