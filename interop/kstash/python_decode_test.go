package kstash

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/pypeer"
)

// pyDecodeScript unpacks each input with msgpack-python's unpackb defaults
// and says whether it accepted it, the type it gave back, and packb of that.
const pyDecodeScript = `
import json, sys, msgpack
out = []
for h in json.load(open(sys.argv[1])):
    try:
        u = msgpack.unpackb(bytes.fromhex(h))
    except Exception as e:
        out.append({"ok": False, "type": type(e).__name__})
        continue
    out.append({"ok": True, "type": type(u).__name__, "repack": msgpack.packb(u).hex()})
json.dump(out, sys.stdout)
`

// TestPythonDecodes gives the same bytes to Unmarshal and to the real
// unpackb: each accepts what the other accepts, and what both accept is
// the same value (Marshal of Go's value is packb of Python's), except the
// extension types, which unpackb gives back as ExtType or Timestamp and
// kstash values never hold: those are ErrMalformed here.
func TestPythonDecodes(t *testing.T) {
	pypeer.Python(t)
	nest := func(head string, n int) string { return strings.Repeat(head, n) + "c0" }
	cases := []struct {
		name, hex string
		accept    bool // by unpackb
		ext       bool // an extension type: unpackb accepts it, Unmarshal does not
	}{
		{"float32", "ca3fc00000", true, false},
		{"float32 nan", "ca7fc00000", true, false},
		{"float32 -inf", "caff800000", true, false},
		{"float32 smallest subnormal", "ca00000001", true, false},
		{"uint8 in a fixint's range", "cc05", true, false},
		{"uint64 of 5", "cf0000000000000005", true, false},
		{"int8 of 0", "d000", true, false},
		{"int64 of -1", "d3ffffffffffffffff", true, false},
		{"int64 min", "d38000000000000000", true, false},
		{"uint64 max", "cfffffffffffffffff", true, false},
		{"int16 positive", "d17fff", true, false},
		{"str8 of one byte", "d90161", true, false},
		{"str32 empty", "db00000000", true, false},
		{"bin8 empty", "c400", true, false},
		{"bin32 of one byte", "c60000000161", true, false},
		{"U+FFFF", "a3efbfbf", true, false},
		{"U+10FFFF", "a4f48fbfbf", true, false},
		{"NUL in str", "a100", true, false},
		{"invalid UTF-8", "a1ff", false, false},
		{"surrogate", "a3eda080", false, false},
		{"overlong slash", "a2c0af", false, false},
		{"beyond U+10FFFF", "a4f4908080", false, false},
		{"cut sequence", "a2e282", false, false},
		{"array32 of one", "dd00000001c0", true, false},
		{"map16 empty", "de0000", true, false},
		{"str and bin keys of the same bytes", "82a16101c4016102", true, false},
		{"repeated key", "82a16101a16102", true, false},
		{"repeated key keeps its place", "83a16101a16202a16103", true, false},
		{"repeated bin key", "82c4016101c4016102", true, false},
		{"int key", "810102", false, false},
		{"nil key", "81c002", false, false},
		{"bool key", "81c302", false, false},
		{"float key", "81ca3fc0000002", false, false},
		{"list key", "819101 02", false, false},
		{"map key", "818001 02", false, false},
		{"ext key", "81d4050001", false, false},
		{"lists MaxDepth deep", nest("91", MaxDepth), true, false},
		{"lists deeper than MaxDepth", nest("91", MaxDepth+1), false, false},
		{"maps MaxDepth deep", nest("81a0", MaxDepth), true, false},
		{"maps deeper than MaxDepth", nest("81a0", MaxDepth+1), false, false},
		{"mixed MaxDepth deep", nest("9181a0", MaxDepth/2), true, false},
		{"mixed deeper than MaxDepth", "91" + nest("9181a0", MaxDepth/2), false, false},
		{"empty lists MaxDepth deep", strings.Repeat("91", MaxDepth-1) + "90", true, false},
		{"empty list deeper than MaxDepth", strings.Repeat("91", MaxDepth) + "90", false, false},
		{"empty", "", false, false},
		{"trailing", "c0c0", false, false},
		{"trailing after a list", "9101 02", false, false},
		{"truncated list", "9201", false, false},
		{"truncated float", "cb3ff8", false, false},
		{"truncated str8", "d9", false, false},
		{"truncated bin", "c40561", false, false},
		{"reserved c1", "c1", false, false},
		{"reserved in a map", "81a161c1", false, false},
		{"array32 lie", "ddffffffff01", false, false},
		{"map32 lie", "dfffffffffa16101", false, false},
		{"bin32 lie", "c6ffffffff00", false, false},
		{"str32 lie", "dbffffffff61", false, false},
		{"nested lies", "dd00000010dd0000000fc0c0c0c0c0c0c0c0c0c0c0c0c0c0c0", false, false},
		{"fixext1", "d40500", true, true},
		{"ext8 empty", "c70005", true, true},
		{"timestamp32", "d6ff00000000", true, true},
		{"timestamp64", "d7ff0000000000000000", true, true},
		{"timestamp96", "c70cff000000000000000000000000", true, true},
		{"ext in a list", "91d40500", true, true},
		{"timestamp of a bad length", "d5ff0000", false, true},
	}
	inputs := make([]string, len(cases))
	for i, c := range cases {
		inputs[i] = strings.ReplaceAll(c.hex, " ", "")
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "inputs.json")
	data, _ := json.Marshal(inputs)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "decode.py")
	if err := os.WriteFile(script, []byte(pyDecodeScript), 0o600); err != nil {
		t.Fatal(err)
	}
	var outs []struct {
		OK     bool   `json:"ok"`
		Type   string `json:"type"`
		Repack string `json:"repack"`
	}
	if err := json.Unmarshal(pypeer.Run(t, context.Background(), nil, script, path), &outs); err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(cases) {
		t.Fatalf("python answered %d inputs of %d", len(outs), len(cases))
	}
	for i, c := range cases {
		py := outs[i]
		if py.OK != c.accept {
			t.Errorf("%s: unpackb(%.24s) accepts it: %v (%s); want %v", c.name, inputs[i], py.OK, py.Type, c.accept)
			continue
		}
		in, _ := hex.DecodeString(inputs[i])
		v, err := Unmarshal(in)
		if !c.accept || c.ext {
			if !errors.Is(err, ErrMalformed) {
				t.Errorf("%s: Unmarshal(%.24s) = %#.60v, %v; want ErrMalformed (unpackb: %s)", c.name, inputs[i], v, err, py.Type)
			}
			continue
		}
		if err != nil {
			t.Errorf("%s: Unmarshal(%.24s): %v; unpackb gives a %s", c.name, inputs[i], err, py.Type)
			continue
		}
		again, err := Marshal(v)
		if err != nil {
			t.Errorf("%s: Marshal(Unmarshal(%.24s)): %v", c.name, inputs[i], err)
			continue
		}
		if want, _ := hex.DecodeString(py.Repack); !bytes.Equal(again, want) {
			t.Errorf("%s: Unmarshal(%.24s) = %#.60v, which Marshal writes as %.24x; unpackb's value packs as %.24s", c.name, inputs[i], v, again, py.Repack)
		}
	}
}
