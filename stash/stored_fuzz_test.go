package stash_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"io"
	"testing"
	"time"

	"github.com/klauspost/compress/zstd"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
)

// FuzzStoredBytes stores whatever bytes and attributes a hostile or broken
// backend might hold under a stash's key, and reads them back through
// Retrieve and Open. Whatever they are (truncated, overlong, a zstd bomb, a
// stored or decoded size that lies, an encoding that is not the bytes'),
// a read either returns exactly the payload the address names (its
// SHA-256 is the address's digest) or fails with one of the package's
// error categories; it never panics and never hands back other bytes.
func FuzzStoredBytes(f *testing.F) {
	enc, err := zstd.NewWriter(nil)
	if err != nil {
		f.Fatal(err)
	}
	zstdOf := func(b []byte) []byte { return enc.EncodeAll(b, nil) }
	payload := bytes.Repeat([]byte("claimstash "), 100)
	bomb := zstdOf(make([]byte, 2<<20))
	// stored, payload (whose digest names the stash), claimed size, claimed
	// stored size, zstd
	f.Add(payload, payload, int64(len(payload)), int64(len(payload)), false)
	f.Add(zstdOf(payload), payload, int64(len(payload)), int64(len(zstdOf(payload))), true)
	f.Add(payload[:10], payload, int64(len(payload)), int64(10), false)
	f.Add(append(bytes.Clone(payload), 'x'), payload, int64(len(payload)), int64(len(payload)+1), false)
	f.Add(bomb, []byte("tiny"), int64(4), int64(len(bomb)), true)
	f.Add(bomb, []byte("tiny"), int64(2<<20), int64(len(bomb)), true)
	f.Add(zstdOf(payload), payload, int64(len(payload)), int64(len(zstdOf(payload))), false)
	f.Add(payload, payload, int64(len(payload)), int64(len(payload)), true)
	f.Add([]byte{}, []byte{}, int64(0), int64(0), false)
	f.Add(payload, payload, int64(-1), int64(len(payload)), false)
	f.Add(payload, payload, int64(1<<62), int64(1<<62), false)
	f.Fuzz(func(t *testing.T, stored, want []byte, size, storedSize int64, compressed bool) {
		ctx := context.Background()
		store := memstash.New()
		e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), stash.WithMaxSize(4<<20))
		if err != nil {
			t.Fatal(err)
		}
		defer e.Close()
		sum := sha256.Sum256(want)
		digest := hex.EncodeToString(sum[:])
		address := "mem://default/fuzz." + digest
		addr, err := stash.ParseAddress(address)
		if err != nil {
			t.Fatal(err)
		}
		attrs := &driver.Attributes{Size: size, StoredSize: storedSize, Digest: digest, Created: time.Now()}
		if compressed {
			attrs.Encoding = driver.EncodingZstd
		}
		if err := store.Put(ctx, addr.Namespace, addr.Key(), bytes.NewReader(stored), int64(len(stored)), attrs); err != nil {
			return // a store may refuse attributes that do not fit the bytes
		}
		// Stored honestly (the payload itself, or one zstd frame of it, with
		// true sizes), a read must succeed.
		honest := size == int64(len(want)) && storedSize == int64(len(stored)) &&
			(!compressed && bytes.Equal(stored, want) || compressed && decodesTo(stored, want))
		check := func(op string, got []byte, err error) {
			t.Helper()
			if err != nil && honest {
				t.Fatalf("%s of honestly stored bytes: %v", op, err)
			}
			if err != nil {
				for _, known := range []error{stash.ErrIntegrity, stash.ErrTooLarge, stash.ErrNotFound, stash.ErrUnsupported, stash.ErrInvalidAddress} {
					if errors.Is(err, known) {
						return
					}
				}
				t.Fatalf("%s: %v: not one of the package's error categories", op, err)
			}
			if !bytes.Equal(got, want) {
				t.Fatalf("%s: %d bytes that are not the payload the address names (%d bytes)", op, len(got), len(want))
			}
		}
		s, err := e.Retrieve(ctx, address)
		var got []byte
		if err == nil {
			got = s.Data
		}
		check("Retrieve", got, err)
		r, err := e.Open(ctx, address)
		if err != nil {
			check("Open", nil, err)
			return
		}
		got, err = io.ReadAll(r)
		if cerr := r.Close(); err == nil && cerr != nil {
			err = cerr
		}
		if err != nil {
			got = nil
		}
		check("Open", got, err)
	})
}

// decodesTo reports whether b is one zstd frame that decodes to want.
func decodesTo(b, want []byte) bool {
	d, err := zstd.NewReader(nil, zstd.WithDecoderConcurrency(1))
	if err != nil {
		return false
	}
	defer d.Close()
	got, err := d.DecodeAll(b, nil)
	return err == nil && bytes.Equal(got, want) && len(b) > 0
}
