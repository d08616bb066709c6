package kstash

import (
	"bytes"
	"context"
	"encoding/hex"
	"encoding/json"
	"math"
	"os"
	"path/filepath"
	"reflect"
	"strconv"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/internal/pypeer"
)

// pyCase is one value written in Go and in Python.
type pyCase struct {
	expr string // a Python expression
	v    any    // the same value in Go
}

func pyCases() []pyCase {
	cases := []pyCase{
		{"None", nil}, {"True", true}, {"False", false},
		{`"data"`, "data"},
		{`{"data": 123}`, Map{{"data", 123}}},
		{`{"as_of": "today", "bin": b"0" * 524288}`, Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte("0"), 524288)}}},
		{"12", 12},
	}
	for _, i := range []int64{0, 1, 127, 128, 255, 256, 65535, 65536, 1<<32 - 1, 1 << 32, math.MaxInt64,
		-1, -32, -33, -128, -129, -32768, -32769, math.MinInt32, math.MinInt32 - 1, math.MinInt64} {
		cases = append(cases, pyCase{strconv.FormatInt(i, 10), i})
	}
	cases = append(cases,
		pyCase{"2**64 - 1", uint64(math.MaxUint64)},
		pyCase{"2**63", uint64(1) << 63},
		pyCase{"0.0", 0.0}, pyCase{"-0.0", math.Copysign(0, -1)}, pyCase{"1.5", 1.5},
		pyCase{"3.141592653589793", math.Pi}, pyCase{"1e300", 1e300}, pyCase{"5e-324", 5e-324},
		pyCase{`float("inf")`, math.Inf(1)}, pyCase{`float("-inf")`, math.Inf(-1)}, pyCase{`float("nan")`, math.Float64frombits(0x7ff8000000000000)}, // Python's quiet NaN; Go's math.NaN() has another payload, written as it is,
		pyCase{`""`, ""}, pyCase{`"a" * 31`, strings.Repeat("a", 31)}, pyCase{`"a" * 32`, strings.Repeat("a", 32)},
		pyCase{`"a" * 255`, strings.Repeat("a", 255)}, pyCase{`"a" * 256`, strings.Repeat("a", 256)},
		pyCase{`"a" * 65535`, strings.Repeat("a", 65535)}, pyCase{`"a" * 65536`, strings.Repeat("a", 65536)},
		pyCase{`"ünïcødé ✓ 𝄞 日本語 \x00 🎉"`, "ünïcødé ✓ 𝄞 日本語 \x00 🎉"},
		pyCase{`"é" * 40000`, strings.Repeat("é", 40000)},
		pyCase{`b""`, []byte{}}, pyCase{`b"0"`, []byte("0")}, pyCase{`b"\x00\xff"`, []byte{0, 0xff}},
		pyCase{`b"x" * 255`, bytes.Repeat([]byte("x"), 255)}, pyCase{`b"x" * 256`, bytes.Repeat([]byte("x"), 256)},
		pyCase{`b"x" * 65535`, bytes.Repeat([]byte("x"), 65535)}, pyCase{`b"x" * 65536`, bytes.Repeat([]byte("x"), 65536)},
		pyCase{`b"x" * 70000`, bytes.Repeat([]byte("x"), 70000)},
		pyCase{`bytearray(b"ab")`, []byte("ab")},
		pyCase{"[]", []any{}}, pyCase{`[1, "a", None, 1.5, b"b", [], {}]`, []any{1, "a", nil, 1.5, []byte("b"), []any{}, Map{}}},
		pyCase{"(1, 2)", []int{1, 2}},
		pyCase{"list(range(15))", rangeList(15)}, pyCase{"list(range(16))", rangeList(16)},
		pyCase{"list(range(65535))", rangeList(65535)}, pyCase{"list(range(65536))", rangeList(65536)},
		pyCase{"[-i for i in range(300)]", negList(300)},
		pyCase{"{}", Map{}}, pyCase{`{"b": 1, "a": 2}`, Map{{"b", 1}, {"a", 2}}},
		pyCase{`{"a": 2, "b": 1}`, map[string]any{"b": 1, "a": 2}},
		pyCase{`{b"bin": 1, "bin": 2}`, Map{{[]byte("bin"), 1}, {"bin", 2}}},
		pyCase{`{"k": {"n": [1, {"x": b"y", "z": [None, [True]]}], "é": -1.25}}`,
			Map{{"k", Map{{"n", []any{1, Map{{"x", []byte("y")}, {"z", []any{nil, []any{true}}}}}}, {"é", -1.25}}}}},
		pyCase{"{str(i): i for i in range(15)}", numberedMap(15)}, pyCase{"{str(i): i for i in range(16)}", numberedMap(16)},
		pyCase{"{str(i): i for i in range(65536)}", numberedMap(65536)},
		pyCase{"nest(500)", nested(500)},
	)
	return cases
}

func rangeList(n int) []any {
	out := make([]any, n)
	for i := range out {
		out[i] = i
	}
	return out
}

func negList(n int) []int {
	out := make([]int, n)
	for i := range out {
		out[i] = -i
	}
	return out
}

func numberedMap(n int) Map {
	m := make(Map, n)
	for i := range m {
		m[i] = Pair{strconv.Itoa(i), i}
	}
	return m
}

// normalize is the decoding table of the package documentation applied to a
// Go value: what Unmarshal must give back for it.
func normalize(v any) any {
	switch v := v.(type) {
	case int:
		return int64(v)
	case int64:
		return v
	case uint64:
		if v <= math.MaxInt64 {
			return int64(v)
		}
		return v
	case float32:
		return float64(v)
	case []int:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = int64(e)
		}
		return out
	case []any:
		out := make([]any, len(v))
		for i, e := range v {
			out[i] = normalize(e)
		}
		return out
	case Map:
		out := make(Map, len(v))
		for i, p := range v {
			out[i] = Pair{p.Key, normalize(p.Value)}
		}
		return out
	case map[string]any:
		return normalize(sortedMap(reflect.ValueOf(v)))
	}
	return v
}

const pyScript = `
import json, sys, math, msgpack
def nest(n):
    x = None
    for _ in range(n):
        x = [x]
    return x
cases = json.load(open(sys.argv[1]))
out = []
for c in cases:
    v = eval(c["expr"])
    go = bytes.fromhex(c["go"])
    u = msgpack.unpackb(go)
    if isinstance(v, tuple):
        v = list(v)
    same = u == v or (isinstance(v, float) and math.isnan(v) and math.isnan(u))
    out.append({"py": msgpack.packb(v).hex(), "same": same, "repack": msgpack.packb(u) == go})
json.dump(out, sys.stdout)
`

// TestPython compares with the real msgpack-python, both ways: Go encodes
// every value exactly as packb does, Go decodes what packb wrote into the
// documented types, and unpackb reads what Go wrote as the same value.
func TestPython(t *testing.T) {
	pypeer.Python(t)
	cases := pyCases()
	type in struct {
		Expr string `json:"expr"`
		Go   string `json:"go"`
	}
	ins := make([]in, len(cases))
	goBytes := make([][]byte, len(cases))
	for i, c := range cases {
		b, err := Marshal(c.v)
		if err != nil {
			t.Fatalf("Marshal(%s): %v", c.expr, err)
		}
		goBytes[i] = b
		ins[i] = in{c.expr, hex.EncodeToString(b)}
	}
	dir := t.TempDir()
	path := filepath.Join(dir, "cases.json")
	data, _ := json.Marshal(ins)
	if err := os.WriteFile(path, data, 0o600); err != nil {
		t.Fatal(err)
	}
	script := filepath.Join(dir, "vectors.py")
	if err := os.WriteFile(script, []byte(pyScript), 0o600); err != nil {
		t.Fatal(err)
	}
	var outs []struct {
		Py     string `json:"py"`
		Same   bool   `json:"same"`
		Repack bool   `json:"repack"`
	}
	if err := json.Unmarshal(pypeer.Run(t, context.Background(), nil, script, path), &outs); err != nil {
		t.Fatal(err)
	}
	if len(outs) != len(cases) {
		t.Fatalf("python answered %d cases of %d", len(outs), len(cases))
	}
	for i, c := range cases {
		py, _ := hex.DecodeString(outs[i].Py)
		if !bytes.Equal(goBytes[i], py) {
			t.Errorf("%.40s: Go encodes %.24x… (%d bytes), Python %.24x… (%d bytes)", c.expr, goBytes[i], len(goBytes[i]), py, len(py))
		}
		if !outs[i].Same || !outs[i].Repack {
			t.Errorf("%.40s: Python's unpackb of the Go bytes: same value %v, packs back to them %v", c.expr, outs[i].Same, outs[i].Repack)
		}
		got, err := Unmarshal(py)
		if err != nil {
			t.Errorf("%.40s: Unmarshal(Python's bytes): %v", c.expr, err)
			continue
		}
		if want := normalize(c.v); !equalValues(got, want) {
			t.Errorf("%.40s: Unmarshal(Python's bytes) = %#.80v, want %#.80v", c.expr, got, want)
		}
	}
	t.Logf("%d values compared byte for byte with msgpack-python", len(cases))
}
