package kstash

import (
	"bytes"
	"errors"
	"reflect"
	"testing"
)

// FuzzDecode: Unmarshal never panics, fails only with ErrMalformed, and
// what it decodes encodes to bytes that decode to the same value.
func FuzzDecode(f *testing.F) {
	for _, s := range []string{
		"c0", "c3", "7f", "ccff", "d0df", "cb3ff8000000000000", "ca3fc00000", "a3616263",
		"c40130", "920102", "82a16201a16102", "81c4016bc0", "dd00000002c0c0",
		"dd ffffffff 01", "c6ffffffff00", "d40500", "c1", "a1ff", "8101 02",
	} {
		f.Add(h(s))
	}
	seed, _ := Marshal(Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte{'0'}, 300)}, {"l", []any{-1, 1.5, nil, true}}})
	f.Add(seed)
	f.Fuzz(func(t *testing.T, data []byte) {
		v, err := Unmarshal(data)
		if err != nil {
			if !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal(%x): error %v is not ErrMalformed", data, err)
			}
			return
		}
		again, err := Marshal(v)
		if err != nil {
			t.Fatalf("Marshal(Unmarshal(%x)): %v", data, err)
		}
		w, err := Unmarshal(again)
		if err != nil {
			t.Fatalf("Unmarshal(Marshal(Unmarshal(%x))): %v", data, err)
		}
		if !equalValues(v, w) {
			t.Fatalf("round trip of %x changed %#v into %#v", data, v, w)
		}
	})
}

// equalValues is reflect.DeepEqual but with NaN equal to NaN.
func equalValues(a, b any) bool {
	if fa, ok := a.(float64); ok {
		fb, ok := b.(float64)
		return ok && (fa == fb || fa != fa && fb != fb)
	}
	switch a := a.(type) {
	case []any:
		b, ok := b.([]any)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !equalValues(a[i], b[i]) {
				return false
			}
		}
		return true
	case Map:
		b, ok := b.(Map)
		if !ok || len(a) != len(b) {
			return false
		}
		for i := range a {
			if !reflect.DeepEqual(a[i].Key, b[i].Key) || !equalValues(a[i].Value, b[i].Value) {
				return false
			}
		}
		return true
	}
	return reflect.DeepEqual(a, b)
}
