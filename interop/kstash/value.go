package kstash

import (
	"bytes"
	"errors"
	"fmt"
	"math"
	"reflect"
	"slices"
	"strings"
	"unicode/utf8"

	"github.com/tinylib/msgp/msgp"

	"github.com/claimstash/claimstash/stash"
)

// MaxDepth is the deepest nesting of lists and maps that Marshal writes and
// Unmarshal reads: 1024 containers, as msgpack-python's unpacker (a value
// nested deeper is a StackError there).
const MaxDepth = 1024

// ErrMalformed is bytes that are not one kstash value: truncated or
// trailing data, a reserved or extension type, a length the data does not
// back, nesting deeper than MaxDepth, a str that is not UTF-8, or a map key
// other than str or bin. errors.Is(ErrMalformed, stash.ErrIntegrity) is true:
// a stash whose bytes match their md5 but do not decode is as unusable as a
// corrupted one, and never reaches a handler.
var ErrMalformed error = malformedError{}

type malformedError struct{}

func (malformedError) Error() string { return "kstash: malformed msgpack" }

// Is makes errors.Is(ErrMalformed, stash.ErrIntegrity) true.
func (malformedError) Is(target error) bool { return target == stash.ErrIntegrity }

// ErrUnsupportedValue is a Go value that has no kstash encoding: a type
// outside the table in the package documentation, a string that is not
// UTF-8 (Python's str cannot hold it; use []byte), a map key other than a
// string or []byte, a length over 2^32-1, or nesting deeper than MaxDepth.
var ErrUnsupportedValue = errors.New("kstash: value cannot be encoded")

func malformed(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrMalformed, fmt.Sprintf(format, args...))
}

func unsupported(format string, args ...any) error {
	return fmt.Errorf("%w: %s", ErrUnsupportedValue, fmt.Sprintf(format, args...))
}

// Pair is one entry of a Map.
type Pair struct {
	// Key is a string (a Python str) or a []byte (a Python bytes).
	Key   any
	Value any
}

// Map is a msgpack map in insertion order, as a Python dict keeps it. Go
// maps have no order, and the order is part of the bytes, so of the md5
// and the address: use Map wherever the address must equal the one Python
// computes for the same dict. Keys are strings or []byte (msgpack-python
// unpacks no other key types by default); "a" and []byte("a") are
// different keys, as "a" and b"a" are in Python.
type Map []Pair

// Get returns the value under key (a string or []byte) and whether it is
// there.
func (m Map) Get(key any) (any, bool) {
	if i := m.index(key); i >= 0 {
		return m[i].Value, true
	}
	return nil, false
}

// Set replaces the value under key, keeping its position, or appends the
// pair if key is new, as assigning to a Python dict does.
func (m *Map) Set(key, value any) {
	if i := m.index(key); i >= 0 {
		(*m)[i].Value = value
		return
	}
	*m = append(*m, Pair{Key: key, Value: value})
}

// Keys returns the keys in order.
func (m Map) Keys() []any {
	out := make([]any, len(m))
	for i, p := range m {
		out[i] = p.Key
	}
	return out
}

func (m Map) index(key any) int {
	for i, p := range m {
		if keyEqual(p.Key, key) {
			return i
		}
	}
	return -1
}

func keyEqual(a, b any) bool {
	switch a := a.(type) {
	case string:
		b, ok := b.(string)
		return ok && a == b
	case []byte:
		b, ok := b.([]byte)
		return ok && bytes.Equal(a, b)
	}
	return false
}

// Marshal encodes v as msgpack-python's packb does with its defaults
// (use_bin_type=True): the bytes kstash stores and hashes. See the package
// documentation for the Go types it accepts. A value it cannot encode is
// ErrUnsupportedValue.
func Marshal(v any) ([]byte, error) {
	return appendValue(nil, v, 0)
}

func appendValue(b []byte, v any, depth int) ([]byte, error) {
	switch v := v.(type) {
	case nil:
		return msgp.AppendNil(b), nil
	case bool:
		return msgp.AppendBool(b, v), nil
	case int:
		return appendInt(b, int64(v)), nil
	case int64:
		return appendInt(b, v), nil
	case int32:
		return appendInt(b, int64(v)), nil
	case int16:
		return appendInt(b, int64(v)), nil
	case int8:
		return appendInt(b, int64(v)), nil
	case uint:
		return msgp.AppendUint64(b, uint64(v)), nil
	case uint64:
		return msgp.AppendUint64(b, v), nil
	case uint32:
		return msgp.AppendUint64(b, uint64(v)), nil
	case uint16:
		return msgp.AppendUint64(b, uint64(v)), nil
	case uint8:
		return msgp.AppendUint64(b, uint64(v)), nil
	case float64:
		return msgp.AppendFloat64(b, v), nil
	case float32:
		return msgp.AppendFloat64(b, float64(v)), nil
	case string:
		return appendString(b, v)
	case []byte:
		if uint64(len(v)) > math.MaxUint32 {
			return nil, unsupported("bytes of %d bytes, over 2^32-1", len(v))
		}
		return msgp.AppendBytes(b, v), nil
	case []any:
		if depth >= MaxDepth {
			return nil, unsupported("nested deeper than %d", MaxDepth)
		}
		if uint64(len(v)) > math.MaxUint32 {
			return nil, unsupported("list of %d items, over 2^32-1", len(v))
		}
		b = msgp.AppendArrayHeader(b, uint32(len(v)))
		var err error
		for _, e := range v {
			if b, err = appendValue(b, e, depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case Map:
		return appendMap(b, v, depth)
	case *Map:
		if v == nil {
			return msgp.AppendNil(b), nil
		}
		return appendMap(b, *v, depth)
	case map[string]any:
		return appendMap(b, sortedMap(reflect.ValueOf(v)), depth)
	}
	return appendReflect(b, reflect.ValueOf(v), depth)
}

// appendInt writes an integer in its smallest form as msgpack-python does:
// non-negative values as positive fixint or uint 8/16/32/64, negative ones as
// negative fixint or int 8/16/32/64.
func appendInt(b []byte, i int64) []byte {
	if i >= 0 {
		return msgp.AppendUint64(b, uint64(i))
	}
	return msgp.AppendInt64(b, i)
}

func appendString(b []byte, s string) ([]byte, error) {
	if !utf8.ValidString(s) {
		return nil, unsupported("string is not UTF-8 (send bytes as []byte)")
	}
	if uint64(len(s)) > math.MaxUint32 {
		return nil, unsupported("string of %d bytes, over 2^32-1", len(s))
	}
	return msgp.AppendString(b, s), nil
}

func appendMap(b []byte, m Map, depth int) ([]byte, error) {
	if depth >= MaxDepth {
		return nil, unsupported("nested deeper than %d", MaxDepth)
	}
	if uint64(len(m)) > math.MaxUint32 {
		return nil, unsupported("map of %d entries, over 2^32-1", len(m))
	}
	b = msgp.AppendMapHeader(b, uint32(len(m)))
	var err error
	for _, p := range m {
		switch k := p.Key.(type) {
		case string:
			if b, err = appendString(b, k); err != nil {
				return nil, err
			}
		case []byte:
			if b, err = appendValue(b, k, depth+1); err != nil {
				return nil, err
			}
		default:
			return nil, unsupported("map key of type %T: want a string or []byte", p.Key)
		}
		if b, err = appendValue(b, p.Value, depth+1); err != nil {
			return nil, err
		}
	}
	return b, nil
}

// sortedMap turns a Go map with string keys into a Map in key order, so
// that its encoding, and so its address, is the same every time.
func sortedMap(rv reflect.Value) Map {
	m := make(Map, 0, rv.Len())
	iter := rv.MapRange()
	for iter.Next() {
		m = append(m, Pair{Key: iter.Key().String(), Value: iter.Value().Interface()})
	}
	slices.SortFunc(m, func(a, b Pair) int { return strings.Compare(a.Key.(string), b.Key.(string)) })
	return m
}

// appendReflect handles named types of the kinds above, and slices, arrays
// and string-keyed maps of any element type.
func appendReflect(b []byte, rv reflect.Value, depth int) ([]byte, error) {
	if !rv.IsValid() {
		return msgp.AppendNil(b), nil
	}
	switch rv.Kind() {
	case reflect.Bool:
		return msgp.AppendBool(b, rv.Bool()), nil
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64:
		return appendInt(b, rv.Int()), nil
	case reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return msgp.AppendUint64(b, rv.Uint()), nil
	case reflect.Float32, reflect.Float64:
		return msgp.AppendFloat64(b, rv.Float()), nil
	case reflect.String:
		return appendString(b, rv.String())
	case reflect.Slice, reflect.Array:
		if rv.Kind() == reflect.Slice && rv.IsNil() {
			return msgp.AppendNil(b), nil
		}
		if rv.Type().Elem().Kind() == reflect.Uint8 {
			return appendValue(b, bytesOf(rv), depth)
		}
		if depth >= MaxDepth {
			return nil, unsupported("nested deeper than %d", MaxDepth)
		}
		n := rv.Len()
		if uint64(n) > math.MaxUint32 {
			return nil, unsupported("list of %d items, over 2^32-1", n)
		}
		b = msgp.AppendArrayHeader(b, uint32(n))
		var err error
		for i := range n {
			if b, err = appendValue(b, rv.Index(i).Interface(), depth+1); err != nil {
				return nil, err
			}
		}
		return b, nil
	case reflect.Map:
		if rv.IsNil() {
			return msgp.AppendNil(b), nil
		}
		if rv.Type().Key().Kind() != reflect.String {
			return nil, unsupported("map with keys of type %s: want string keys, or a Map", rv.Type().Key())
		}
		return appendMap(b, sortedMap(rv), depth)
	case reflect.Pointer, reflect.Interface:
		if rv.IsNil() {
			return msgp.AppendNil(b), nil
		}
		// A pointer adds no nesting to the bytes, but one that points
		// back at itself (var v any; v = &v) would recurse for ever: it
		// counts towards MaxDepth as a container does.
		if depth >= MaxDepth {
			return nil, unsupported("nested deeper than %d (a pointer to itself?)", MaxDepth)
		}
		return appendValue(b, rv.Elem().Interface(), depth+1)
	}
	return nil, unsupported("values of type %s have no kstash encoding", rv.Type())
}

func bytesOf(rv reflect.Value) []byte {
	if rv.Kind() == reflect.Slice {
		return rv.Bytes()
	}
	out := make([]byte, rv.Len())
	reflect.Copy(reflect.ValueOf(out), rv)
	return out
}

// Unmarshal decodes exactly one msgpack value, as msgpack-python's unpackb
// does with its defaults, into the Go types of the table in the package
// documentation. Anything else (see ErrMalformed) is an error matching
// ErrMalformed; it never panics, and it allocates in proportion to the bytes
// present, never to a length the bytes only declare.
func Unmarshal(data []byte) (any, error) {
	if len(data) == 0 {
		return nil, malformed("no data")
	}
	d := decoder{}
	v, rest, err := d.value(data, 0)
	if err != nil {
		return nil, err
	}
	if len(rest) != 0 {
		return nil, malformed("%d trailing bytes after the value", len(rest))
	}
	return v, nil
}

// decoder holds the number of items that the open containers still
// expect. Each of them takes at least one byte of what follows, so a
// container's count must fit in the bytes left over by all of them: a list
// that could fill the rest on its own, inside lists that each still expect
// as many, would otherwise allocate its slots once per level of nesting.
type decoder struct {
	pending uint64
}

// owed says, for an error message, how many of the remaining bytes the
// enclosing containers' items still need.
func (d *decoder) owed() string {
	if d.pending == 0 {
		return ""
	}
	return fmt.Sprintf(" (%d of them owed to the items of enclosing containers)", d.pending)
}

// indexKey tells a str key from a bin key of the same bytes.
type indexKey struct {
	s   string
	bin bool
}

// Shared values for one-byte items, so that a list of them costs one
// interface slot per byte and nothing more. Both empty containers have no
// capacity: appending to one allocates afresh.
var (
	emptyList any = []any{}
	emptyMap  any = Map{}
	negFixint     = func() (out [32]any) {
		for i := range out {
			out[i] = int64(-32 + i)
		}
		return
	}()
)

func (d *decoder) value(b []byte, depth int) (any, []byte, error) {
	if len(b) == 0 {
		return nil, nil, malformed("truncated: a value is missing")
	}
	switch t := msgp.NextType(b); t {
	case msgp.NilType:
		rest, err := msgp.ReadNilBytes(b)
		return nil, rest, short(err)
	case msgp.BoolType:
		v, rest, err := msgp.ReadBoolBytes(b)
		return v, rest, short(err)
	case msgp.IntType:
		if b[0] >= 0xe0 {
			return negFixint[b[0]-0xe0], b[1:], nil
		}
		v, rest, err := msgp.ReadInt64Bytes(b)
		return v, rest, short(err)
	case msgp.UintType:
		v, rest, err := msgp.ReadUint64Bytes(b)
		if err != nil {
			return nil, nil, short(err)
		}
		if v <= math.MaxInt64 {
			return int64(v), rest, nil
		}
		return v, rest, nil
	case msgp.Float64Type, msgp.Float32Type:
		v, rest, err := msgp.ReadFloat64Bytes(b)
		return v, rest, short(err)
	case msgp.StrType:
		s, rest, err := msgp.ReadStringZC(b)
		if err != nil {
			return nil, nil, short(err)
		}
		if !utf8.Valid(s) {
			return nil, nil, malformed("str is not UTF-8")
		}
		return string(s), rest, nil
	case msgp.BinType:
		v, rest, err := msgp.ReadBytesZC(b)
		if err != nil {
			return nil, nil, short(err)
		}
		return bytes.Clone(v), rest, nil
	case msgp.ArrayType:
		n, rest, err := msgp.ReadArrayHeaderBytes(b)
		if err != nil {
			return nil, nil, short(err)
		}
		if depth >= MaxDepth {
			return nil, nil, malformed("nested deeper than %d", MaxDepth)
		}
		// Every item takes at least one byte: a count the rest cannot hold,
		// beside the items the enclosing containers still expect, is a lie,
		// refused before anything is allocated for it.
		if uint64(n)+d.pending > uint64(len(rest)) {
			return nil, nil, malformed("list of %d items in %d remaining bytes%s", n, len(rest), d.owed())
		}
		if n == 0 {
			return emptyList, rest, nil
		}
		out := make([]any, n)
		d.pending += uint64(n)
		for i := range out {
			d.pending--
			if out[i], rest, err = d.value(rest, depth+1); err != nil {
				return nil, nil, err
			}
		}
		return out, rest, nil
	case msgp.MapType:
		n, rest, err := msgp.ReadMapHeaderBytes(b)
		if err != nil {
			return nil, nil, short(err)
		}
		if depth >= MaxDepth {
			return nil, nil, malformed("nested deeper than %d", MaxDepth)
		}
		if 2*uint64(n)+d.pending > uint64(len(rest)) {
			return nil, nil, malformed("map of %d entries in %d remaining bytes%s", n, len(rest), d.owed())
		}
		return d.mapEntries(rest, int(n), depth)
	case msgp.ExtensionType, msgp.TimeType, msgp.Complex64Type, msgp.Complex128Type:
		return nil, nil, malformed("extension type 0x%02x: kstash values have none", b[0])
	default:
		return nil, nil, malformed("reserved type byte 0x%02x", b[0])
	}
}

// mapEntries reads n key-value pairs. A repeated key keeps its first
// position and takes the last value, as a Python dict built from them does.
func (d *decoder) mapEntries(b []byte, n, depth int) (any, []byte, error) {
	if n == 0 {
		return emptyMap, b, nil
	}
	m := make(Map, 0, n)
	// Large maps find repeated keys by index instead of by scanning. The
	// index holds distinct keys only, and all but a few hundred distinct
	// entries take at least 4 bytes (a 2-byte key and a 1-byte value need a
	// str or bin header of their own): it is sized for what the bytes can
	// hold, not for the count, which may repeat one key or lie.
	var index map[indexKey]int
	if n > 16 {
		index = make(map[indexKey]int, min(n, len(b)/4))
	}
	d.pending += 2 * uint64(n)
	for range n {
		d.pending -= 2
		var key any
		var id indexKey
		switch msgp.NextType(b) {
		case msgp.StrType:
			s, rest, err := msgp.ReadStringZC(b)
			if err != nil {
				return nil, nil, short(err)
			}
			if !utf8.Valid(s) {
				return nil, nil, malformed("map key str is not UTF-8")
			}
			id.s = string(s)
			key, b = id.s, rest
		case msgp.BinType:
			v, rest, err := msgp.ReadBytesZC(b)
			if err != nil {
				return nil, nil, short(err)
			}
			key, b = bytes.Clone(v), rest
			if index != nil {
				id = indexKey{string(v), true}
			}
		case msgp.InvalidType:
			if len(b) == 0 {
				return nil, nil, malformed("truncated: a map key is missing")
			}
			return nil, nil, malformed("reserved type byte 0x%02x", b[0])
		default:
			return nil, nil, malformed("map key of type %s: kstash reads only str and bin keys", msgp.NextType(b))
		}
		val, rest, err := d.value(b, depth+1)
		if err != nil {
			return nil, nil, err
		}
		b = rest
		if index == nil {
			m.Set(key, val)
			continue
		}
		if i, dup := index[id]; dup {
			m[i].Value = val
			continue
		}
		index[id] = len(m)
		m = append(m, Pair{Key: key, Value: val})
	}
	return m, b, nil
}

// short maps the library's errors onto ErrMalformed.
func short(err error) error {
	switch {
	case err == nil:
		return nil
	case errors.Is(err, msgp.ErrShortBytes):
		return malformed("truncated")
	}
	return malformed("%v", err)
}
