package kstash

import (
	"bytes"
	"crypto/md5"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"math"
	"reflect"
	"runtime"
	"strings"
	"testing"

	"github.com/claimstash/claimstash/stash"
)

func md5Of(t *testing.T, v any) string {
	t.Helper()
	b, err := Marshal(v)
	if err != nil {
		t.Fatalf("Marshal(%#v): %v", v, err)
	}
	sum := md5.Sum(b)
	return hex.EncodeToString(sum[:])
}

// TestReadmeDigests: the md5s of kstash's README and tests.
func TestReadmeDigests(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string
	}{
		{Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte{'0'}, 524288)}}, "c6ab205fe81dcad3eec3ab48b96b0618"},
		{Map{{"data", 123}}, "34472d91b2f84052bf26d4eaa862ef86"},
		{map[string]any{"data": 123}, "34472d91b2f84052bf26d4eaa862ef86"},
		{"data", "266f01c5105567ba27fece1c0383227f"},
	} {
		if got := md5Of(t, tc.v); got != tc.want {
			t.Errorf("md5(msgpack(%.40v)) = %s, want %s", tc.v, got, tc.want)
		}
	}
}

func h(s string) []byte {
	b, err := hex.DecodeString(strings.ReplaceAll(s, " ", ""))
	if err != nil {
		panic(err)
	}
	return b
}

// TestMarshalForms checks each form against the msgpack spec as
// msgpack-python chooses it (smallest form; non-negative ints as uint).
func TestMarshalForms(t *testing.T) {
	for _, tc := range []struct {
		v    any
		want string // hex prefix of the encoding
		n    int    // its full length, if only a prefix is given
	}{
		{nil, "c0", 0},
		{true, "c3", 0},
		{false, "c2", 0},
		{0, "00", 0},
		{127, "7f", 0},
		{128, "cc80", 0},
		{255, "ccff", 0},
		{256, "cd0100", 0},
		{65535, "cdffff", 0},
		{65536, "ce00010000", 0},
		{int64(1) << 32, "cf0000000100000000", 0},
		{uint64(math.MaxUint64), "cfffffffffffffffff", 0},
		{int8(-1), "ff", 0},
		{-32, "e0", 0},
		{-33, "d0df", 0},
		{-128, "d080", 0},
		{-129, "d1ff7f", 0},
		{-32768, "d18000", 0},
		{-32769, "d2ffff7fff", 0},
		{int64(math.MinInt32) - 1, "d3ffffffff7fffffff", 0},
		{int64(math.MinInt64), "d38000000000000000", 0},
		{1.5, "cb3ff8000000000000", 0},
		{float32(1.5), "cb3ff8000000000000", 0},
		{0.0, "cb0000000000000000", 0},
		{math.Copysign(0, -1), "cb8000000000000000", 0}, // negative zero keeps its sign, as Python's msgpack writes it
		{"", "a0", 0},
		{"é", "a2c3a9", 0},
		{strings.Repeat("a", 31), "bf", 32},
		{strings.Repeat("a", 32), "d920", 34},
		{strings.Repeat("a", 256), "da0100", 259},
		{strings.Repeat("a", 65536), "db00010000", 65541},
		{[]byte{}, "c400", 0},
		{[]byte("0"), "c40130", 0},
		{make([]byte, 256), "c50100", 259},
		{make([]byte, 65536), "c600010000", 65541},
		{[3]byte{1, 2, 3}, "c403010203", 0},
		{[]any{}, "90", 0},
		{[]int{1, 2}, "920102", 0},
		{make([]any, 16), "dc0010", 19},
		{make([]any, 65536), "dd00010000", 65541},
		{Map{}, "80", 0},
		{map[string]any{}, "80", 0},
		{Map{{"b", 1}, {"a", 2}}, "82a16201a16102", 0},
		{map[string]int{"b": 1, "a": 2}, "82a16102a16201", 0},
		{Map{{[]byte("k"), nil}}, "81c4016bc0", 0},
	} {
		got, err := Marshal(tc.v)
		if err != nil {
			t.Errorf("Marshal(%.30v): %v", tc.v, err)
			continue
		}
		want := h(tc.want)
		n := tc.n
		if n == 0 {
			n = len(want)
		}
		if !bytes.HasPrefix(got, want) || len(got) != n {
			t.Errorf("Marshal(%.30v) = %x (%d bytes), want %x… (%d bytes)", tc.v, got[:min(len(got), 12)], len(got), want, n)
		}
	}
}

type color int

// TestRoundTrip: Unmarshal gives the documented Go types back.
func TestRoundTrip(t *testing.T) {
	big := bytes.Repeat([]byte{0x30}, 70000)
	for _, tc := range []struct {
		in, want any
	}{
		{nil, nil},
		{true, true},
		{7, int64(7)},
		{uint8(200), int64(200)},
		{-5, int64(-5)},
		{uint64(math.MaxUint64), uint64(math.MaxUint64)},
		{color(3), int64(3)},
		{float32(0.5), 0.5},
		{math.Inf(-1), math.Inf(-1)},
		{"ünïcødé ✓ 𝄞", "ünïcødé ✓ 𝄞"},
		{big, big},
		{[]string{"a", "b"}, []any{"a", "b"}},
		{[]any{}, []any{}},
		{Map{}, Map{}},
		{Map{{"z", []any{1, Map{{"y", nil}}}}, {[]byte("z"), 2}}, Map{{"z", []any{int64(1), Map{{"y", nil}}}}, {[]byte("z"), int64(2)}}},
		{map[string][]int{"b": {1}, "a": nil}, Map{{"a", nil}, {"b", []any{int64(1)}}}},
		{new(int), int64(0)},
		{(*Map)(nil), nil},
	} {
		b, err := Marshal(tc.in)
		if err != nil {
			t.Errorf("Marshal(%.30v): %v", tc.in, err)
			continue
		}
		got, err := Unmarshal(b)
		if err != nil {
			t.Errorf("Unmarshal(Marshal(%.30v)): %v", tc.in, err)
			continue
		}
		if !reflect.DeepEqual(got, tc.want) {
			t.Errorf("Unmarshal(Marshal(%.30v)) = %#.60v, want %#.60v", tc.in, got, tc.want)
		}
	}
}

func TestMap(t *testing.T) {
	var m Map
	m.Set("b", 1)
	m.Set("a", 2)
	m.Set([]byte("b"), 3)
	m.Set("b", 4)
	if want := (Map{{"b", 4}, {"a", 2}, {[]byte("b"), 3}}); !reflect.DeepEqual(m, want) {
		t.Fatalf("m = %v, want %v", m, want)
	}
	if v, ok := m.Get("b"); !ok || v != 4 {
		t.Errorf(`Get("b") = %v, %v`, v, ok)
	}
	if v, ok := m.Get([]byte("b")); !ok || v != 3 {
		t.Errorf(`Get(b"b") = %v, %v`, v, ok)
	}
	if _, ok := m.Get("c"); ok {
		t.Error(`Get("c") found something`)
	}
	if _, ok := m.Get(1); ok {
		t.Error(`Get(1) found something`)
	}
	if got := m.Keys(); !reflect.DeepEqual(got, []any{"b", "a", []byte("b")}) {
		t.Errorf("Keys = %v", got)
	}
}

// TestDuplicateKeys: the first position, the last value, as a dict.
func TestDuplicateKeys(t *testing.T) {
	small := h("83 a161 01 a162 02 a161 03")
	got, err := Unmarshal(small)
	if err != nil || !reflect.DeepEqual(got, Map{{"a", int64(3)}, {"b", int64(2)}}) {
		t.Errorf("small map: %v, %v", got, err)
	}
	// Large enough for the indexed path.
	var m Map
	for i := range 20 {
		m = append(m, Pair{string(rune('a' + i)), i})
	}
	m = append(m, Pair{"a", "last"}, Pair{[]byte("a"), "bin"})
	b, _ := Marshal(m)
	got, err = Unmarshal(b)
	if err != nil {
		t.Fatal(err)
	}
	gm := got.(Map)
	if len(gm) != 21 || gm[0].Value != "last" || !reflect.DeepEqual(gm[20].Key, []byte("a")) {
		t.Errorf("large map: %d entries, first %v, last %v", len(gm), gm[0], gm[len(gm)-1])
	}
}

func nested(n int) any {
	var v any = nil
	for range n {
		v = []any{v}
	}
	return v
}

func TestUnsupportedValues(t *testing.T) {
	for name, v := range map[string]any{
		"struct":       struct{ A int }{1},
		"chan":         make(chan int),
		"func":         func() {},
		"complex":      complex(1, 2),
		"invalid utf8": "\xff",
		"int keys":     map[int]any{1: 2},
		"Map int key":  Map{{1, 2}},
		"Map bad key":  Map{{"\xff", 2}},
		"too deep":     nested(MaxDepth + 1),
		"deep map":     Map{{"a", nested(MaxDepth)}},
	} {
		if _, err := Marshal(v); !errors.Is(err, ErrUnsupportedValue) {
			t.Errorf("%s: Marshal error %v, want ErrUnsupportedValue", name, err)
		}
	}
	if _, err := Marshal(nested(MaxDepth)); err != nil {
		t.Errorf("MaxDepth lists: %v", err)
	}
}

func TestMalformed(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, MaxDepth+1), 0xc0)
	for name, b := range map[string][]byte{
		"empty":               {},
		"truncated str":       h("a3 6162"),
		"truncated str8":      h("d9"),
		"truncated uint32":    h("ce 0001"),
		"truncated float":     h("cb 3ff8"),
		"truncated array":     h("92 01"),
		"truncated map":       h("81 a161"),
		"map key missing":     h("81"),
		"trailing":            h("01 02"),
		"reserved c1":         h("c1"),
		"reserved in list":    h("91 c1"),
		"fixext1":             h("d4 05 00"),
		"ext8":                h("c7 01 05 00"),
		"timestamp32":         h("d6 ff 00000000"),
		"ext key":             h("81 d4 05 00 01"),
		"int key":             h("81 01 02"),
		"nil key":             h("81 c0 02"),
		"list key":            h("81 90 02"),
		"bad utf8 str":        h("a1 ff"),
		"surrogate str":       h("a3 eda080"),
		"bad utf8 key":        h("81 a1ff 01"),
		"array32 lie":         h("dd ffffffff 01"),
		"array16 lie":         h("dc ffff c0 c0"),
		"map32 lie":           h("df ffffffff a161 01"),
		"map lie by one":      h("82 a161 01 a1"),
		"bin32 lie":           h("c6 ffffffff 00"),
		"str32 lie":           h("db ffffffff 61"),
		"nesting bomb":        deep,
		"nesting bomb in map": append(h("81 a161"), deep...),
	} {
		v, err := Unmarshal(b)
		if !errors.Is(err, ErrMalformed) || !errors.Is(err, stash.ErrIntegrity) {
			t.Errorf("%s: Unmarshal(%x) = %v, %v; want ErrMalformed (and ErrIntegrity)", name, b[:min(len(b), 12)], v, err)
		}
	}
	ok := append(bytes.Repeat([]byte{0x91}, MaxDepth), 0xc0)
	if _, err := Unmarshal(ok); err != nil {
		t.Errorf("%d nested lists: %v", MaxDepth, err)
	}
}

// TestNoAllocationFromDeclaredLengths: inputs that declare gigabytes cost
// no more than the few bytes they hold.
func TestNoAllocationFromDeclaredLengths(t *testing.T) {
	lies := [][]byte{
		h("dd ffffffff c0c0c0c0"),
		h("df ffffffff a161 01"),
		h("c6 ffffffff 00"),
		h("db ffffffff 61"),
		h("91 91 91 dd 7fffffff c0"),
	}
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	const rounds = 100
	for range rounds {
		for _, b := range lies {
			if _, err := Unmarshal(b); !errors.Is(err, ErrMalformed) {
				t.Fatalf("Unmarshal(%x): %v", b, err)
			}
		}
	}
	runtime.ReadMemStats(&after)
	per := (after.TotalAlloc - before.TotalAlloc) / rounds / uint64(len(lies))
	if per > 4<<10 {
		t.Errorf("%d bytes allocated per lying input, want at most 4 KiB", per)
	}
}

// TestNestedLiesAllocateOnce: lists and maps nested MaxDepth deep whose
// counts each claim the whole remaining input cost what the input does, not
// that once per level (they cost 16 KiB per input byte, 64 MiB for this 4
// KiB, when each count was checked against the remaining bytes alone).
func TestNestedLiesAllocateOnce(t *testing.T) {
	const pad = 4 << 10
	for name, head := range map[string]func(remaining uint32) []byte{
		"lists": func(r uint32) []byte { return binary.BigEndian.AppendUint32([]byte{0xdd}, r) },
		"maps":  func(r uint32) []byte { return append(binary.BigEndian.AppendUint32([]byte{0xdf}, r/2), 0xa0) },
	} {
		headLen := len(head(0))
		var in []byte
		for i := range MaxDepth {
			in = append(in, head(uint32(headLen*(MaxDepth-1-i)+pad))...)
		}
		in = append(in, bytes.Repeat([]byte{0xc0}, pad)...)
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		_, err := Unmarshal(in)
		runtime.ReadMemStats(&after)
		if !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: Unmarshal: %v; want ErrMalformed", name, err)
		}
		if per := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in)); per > 40 {
			t.Errorf("%s: %.1f bytes allocated per input byte, want at most 40", name, per)
		}
	}
	// Counts that the input does back still decode at every level.
	var in []byte
	for range MaxDepth - 1 {
		in = append(in, 0x92, 0xc0)
	}
	in = append(in, 0x92, 0xc0, 0xc0)
	v, err := Unmarshal(in)
	if err != nil {
		t.Fatalf("%d nested two-item lists: %v", MaxDepth, err)
	}
	for range MaxDepth - 1 {
		v = v.([]any)[1]
	}
	if l := v.([]any); len(l) != 2 || l[0] != nil || l[1] != nil {
		t.Errorf("innermost list: %#v; want [nil nil]", l)
	}
}

// TestDecodedMemory: a value decodes into at most maxDecodeRatio bytes of
// Go memory per input byte (the package documentation says so): an
// interface slot per one-byte item, a Pair and an index entry per map entry.
func TestDecodedMemory(t *testing.T) {
	const maxDecodeRatio = 40
	inputs := map[string][]byte{}
	for name, item := range map[string]byte{"empty lists": 0x90, "empty maps": 0x80, "negative ints": 0xff, "nils": 0xc0, "empty strs": 0xa0} {
		inputs[name] = append(h("dc ffff"), bytes.Repeat([]byte{item}, 65535)...)
	}
	const abc = "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/"
	var ab []byte // a map of 65535 distinct 3-character keys with nil values
	ab = append(ab, h("de ffff")...)
	for i := range 65535 {
		ab = append(ab, 0xa3, abc[i>>12], abc[i>>6&63], abc[i&63], 0xc0)
	}
	inputs["map of short keys"] = ab
	var bins []byte // the same with bin keys
	bins = append(bins, h("de ffff")...)
	for i := range 65535 {
		bins = append(bins, 0xc4, 2, byte(i>>8), byte(i), 0xc0)
	}
	inputs["map of short bin keys"] = bins
	smallMaps := h("dc ffff") // 65535 maps of one 1-byte key
	for range 65535 {
		smallMaps = append(smallMaps, 0x81, 0xa1, 'k', 0xc0)
	}
	inputs["small maps"] = smallMaps
	// A count of one entry per two bytes, which the bytes hold only if
	// the key repeats: the index is not sized for the count.
	inputs["map of one repeated key"] = append(h("de 7fff"), bytes.Repeat([]byte{0xa0, 0xc0}, 0x7fff)...)
	inputs["map count that lies at the first key"] = append(h("de 7fff"), bytes.Repeat([]byte{0xc0}, 2*0x7fff)...)
	for name, in := range inputs {
		var before, after runtime.MemStats
		runtime.GC()
		runtime.ReadMemStats(&before)
		v, err := Unmarshal(in)
		runtime.ReadMemStats(&after)
		if lies := strings.Contains(name, "lies"); lies && !errors.Is(err, ErrMalformed) {
			t.Fatalf("%s: %v; want ErrMalformed", name, err)
		} else if !lies && err != nil {
			t.Fatalf("%s: %v", name, err)
		}
		if m, ok := v.(Map); ok && strings.Contains(name, "repeated") && (len(m) != 1 || m[0].Key != "") {
			t.Fatalf("%s: %d entries; want the one key \"\"", name, len(m))
		}
		if l, ok := v.([]any); ok && len(l) != 65535 {
			t.Fatalf("%s: %d items", name, len(l))
		}
		if per := float64(after.TotalAlloc-before.TotalAlloc) / float64(len(in)); per > maxDecodeRatio {
			t.Errorf("%s: %.1f bytes allocated per input byte, want at most %d", name, per, maxDecodeRatio)
		} else {
			t.Logf("%s: %.1f bytes per input byte", name, per)
		}
	}
}
