package claimcheck_test

import (
	"bytes"
	"context"
	"crypto/sha256"
	"encoding/hex"
	"strconv"
	"testing"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// FuzzRehydrate hands a consumer's checker whatever a producer (or an
// attacker) might put in a message: any body under any contract headers.
// A message without the contract passes through untouched. A marked one
// either fails, or yields exactly the payload its address names (its
// SHA-256 is the address's digest, or the inline address's own data) at
// the size its header declares; its contract headers are then gone.
// Nothing panics.
func FuzzRehydrate(f *testing.F) {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()), stash.WithInlineMax(-1))
	if err != nil {
		f.Fatal(err)
	}
	f.Cleanup(func() { e.Close() })
	c, err := claimcheck.New(e)
	if err != nil {
		f.Fatal(err)
	}
	payload := bytes.Repeat([]byte("order "), 2000)
	s, err := e.Create(ctx, "orders", payload)
	if err != nil {
		f.Fatal(err)
	}
	address, size := s.Address.String(), strconv.Itoa(len(payload))
	if out, _, err := c.Rehydrate(ctx, "t", []byte(address), claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: size}); err != nil || !bytes.Equal(out, payload) {
		f.Fatalf("the valid seed does not rehydrate: %v", err)
	}
	inline := "inline://default/x?data=aGVsbG8"
	f.Add([]byte(address), claimcheck.ContractVersion, size, true)
	f.Add([]byte(address), claimcheck.ContractVersion, "1", true)
	f.Add([]byte(address), "2", size, true)
	f.Add([]byte(address+" "), claimcheck.ContractVersion, size, true)
	f.Add([]byte(inline), claimcheck.ContractVersion, "5", true)
	f.Add([]byte("mem://default/../../etc/passwd."+s.Address.Digest), claimcheck.ContractVersion, size, true)
	f.Add([]byte("plain body"), "", "", false)
	f.Add([]byte{}, claimcheck.ContractVersion, "0", true)
	f.Fuzz(func(t *testing.T, body []byte, version, size string, marked bool) {
		h := claimcheck.MapHeaders{}
		if marked {
			h[claimcheck.HeaderVersion] = version
			h[claimcheck.HeaderSize] = size
		}
		in := bytes.Clone(body)
		out, _, err := c.Rehydrate(ctx, "t", in, h)
		if !marked {
			if err != nil || !bytes.Equal(out, body) {
				t.Fatalf("a plain message came out as %d bytes, %v", len(out), err)
			}
			return
		}
		if err != nil {
			if h[claimcheck.HeaderVersion] != version {
				t.Fatalf("a failed rehydrate changed the headers: %v", h)
			}
			return
		}
		addr, perr := stash.ParseAddress(string(body))
		if perr != nil {
			t.Fatalf("rehydrated a body that is no address: %.100q: %v", body, perr)
		}
		if addr.IsInline() {
			if !bytes.Equal(out, addr.Data) {
				t.Fatalf("inline address gave %d bytes, not its own data", len(out))
			}
		} else if sum := sha256.Sum256(out); hex.EncodeToString(sum[:]) != addr.Digest {
			t.Fatalf("rehydrated %d bytes whose digest is not the address's", len(out))
		}
		if strconv.Itoa(len(out)) != size {
			t.Fatalf("rehydrated %d bytes under a size header of %q", len(out), size)
		}
		if claimcheck.IsClaimChecked(h) {
			t.Fatalf("contract headers left after a rehydrate: %v", h)
		}
	})
}
