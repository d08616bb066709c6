package kstash

import (
	"bytes"
	"crypto/md5"
	"testing"
)

// BenchmarkCodec encodes and decodes kstash's README value (a 512 KiB bin
// in a map) beside the raw operations it cannot avoid: copying the bytes
// and hashing them with md5. Compare ns/op within one run.
func BenchmarkCodec(b *testing.B) {
	v := Map{{"as_of", "today"}, {"bin", bytes.Repeat([]byte("0"), 512<<10)}}
	enc, err := Marshal(v)
	if err != nil {
		b.Fatal(err)
	}
	b.Run("raw-copy", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			_ = bytes.Clone(enc)
		}
	})
	b.Run("raw-md5", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			_ = md5.Sum(enc)
		}
	})
	b.Run("marshal", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := Marshal(v); err != nil {
				b.Fatal(err)
			}
		}
	})
	b.Run("unmarshal", func(b *testing.B) {
		b.SetBytes(int64(len(enc)))
		for b.Loop() {
			if _, err := Unmarshal(enc); err != nil {
				b.Fatal(err)
			}
		}
	})
	list := make([]any, 10000)
	for i := range list {
		list[i] = Map{{"id", i}, {"name", "item"}, {"score", 1.5}}
	}
	small, _ := Marshal(list)
	b.Run("unmarshal-10k-maps", func(b *testing.B) {
		b.SetBytes(int64(len(small)))
		for b.Loop() {
			if _, err := Unmarshal(small); err != nil {
				b.Fatal(err)
			}
		}
	})
}
