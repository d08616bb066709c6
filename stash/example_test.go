package stash_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log"
	"strings"

	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// Create a stash, send its address instead of the payload, and retrieve it
// on the other side.
func Example() {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		log.Fatal(err)
	}
	defer e.Close()

	payload := bytes.Repeat([]byte(`{"order":42,"status":"paid"},`), 1000)
	s, err := e.Create(ctx, "orders", payload, stash.ContentType("application/json"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address) // this is what travels in the message

	got, err := e.Retrieve(ctx, s.Address.String())
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(len(got.Data), got.ContentType, got.Encoding, bytes.Equal(got.Data, payload))
	// Output:
	// mem://default/orders.87799da449c517a04599cdc883b5ee5133b8a86f14c7d8a3c38a8a0001e781f5
	// 29000 application/json zstd true
}

// Small payloads travel in the address itself and touch no backend.
func ExampleEngine_Create_inline() {
	e, err := stash.New() // no backend: inline only
	if err != nil {
		log.Fatal(err)
	}
	s, err := e.Create(context.Background(), "greeting", []byte("hello"))
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(s.Address)

	got, err := e.Retrieve(context.Background(), "inline://default/greeting?data=aGVsbG8%3D")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%s\n", got.Data)
	// Output:
	// inline://default/greeting?data=aGVsbG8%3D
	// hello
}

// Open streams a stash and verifies it on the way: a clean io.EOF means
// every byte matched the digest in the address.
func ExampleEngine_Open() {
	ctx := context.Background()
	e, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		log.Fatal(err)
	}
	src := strings.NewReader(strings.Repeat("a line of a large report\n", 100_000))
	s, err := e.CreateFrom(ctx, "report", src)
	if err != nil {
		log.Fatal(err)
	}

	r, err := e.Open(ctx, s.Address.String())
	if err != nil {
		log.Fatal(err)
	}
	defer r.Close()
	n, err := io.Copy(io.Discard, r) // io.Copy stops at io.EOF, reports any other error
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(n, r.Stash().Size, r.Stash().StoredSize < n)
	// Output:
	// 2500000 2500000 true
}

// A stash whose stored bytes were changed is refused: no data comes back,
// and the error says why.
func ExampleEngine_Retrieve_tampered() {
	ctx := context.Background()
	store := memstash.New()
	e, err := stash.New(stash.WithBackend(store))
	if err != nil {
		log.Fatal(err)
	}
	s, err := e.Create(ctx, "invoice", bytes.Repeat([]byte("total: 100.00 EUR\n"), 20))
	if err != nil {
		log.Fatal(err)
	}
	store.Corrupt(s.Address.Namespace, s.Address.Key(), 7) // a disk flips a bit

	got, err := e.Retrieve(ctx, s.Address.String())
	fmt.Println(got == nil, errors.Is(err, stash.ErrIntegrity))

	_, err = e.Retrieve(ctx, "mem://default/../../etc/passwd.3dfe9d1c10ba8b4bb4eddfed4bb2bd4fc2f1bba1a18b43d46f5f8e8883cf2d3c")
	fmt.Println(errors.Is(err, stash.ErrInvalidAddress))

	if err := e.Delete(ctx, s.Address.String()); err != nil {
		log.Fatal(err)
	}
	_, err = e.Retrieve(ctx, s.Address.String())
	fmt.Println(errors.Is(err, stash.ErrNotFound))
	// Output:
	// true true
	// true
	// true
}

func ExampleParseAddress() {
	a, err := stash.ParseAddress("s3://claims/org=42/project=1337/orders.3dfe9d1c10ba8b4bb4eddfed4bb2bd4fc2f1bba1a18b43d46f5f8e8883cf2d3c")
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(a.Scheme, a.Namespace, a.Scopes, a.Name, a.DigestAlgorithm())
	fmt.Println(a.Key())
	// Output:
	// s3 claims [org=42 project=1337] orders sha256
	// org=42/project=1337/orders.3dfe9d1c10ba8b4bb4eddfed4bb2bd4fc2f1bba1a18b43d46f5f8e8883cf2d3c
}
