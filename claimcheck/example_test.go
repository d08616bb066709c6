package claimcheck_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// A producer offloads a large body; a consumer restores it.
func Example() {
	ctx := context.Background()
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	c, _ := claimcheck.New(engine) // 256 KiB threshold

	big := bytes.Repeat([]byte("x"), 1<<20)
	headers := claimcheck.MapHeaders{"trace-id": "abc"}
	body, address, err := c.Offload(ctx, "orders", big, headers)
	if err != nil {
		panic(err)
	}
	fmt.Println("sent body is the address:", string(body) == address, len(body) < 200)
	fmt.Println("headers:", headers["claimstash-version"], headers["claimstash-size"], headers["trace-id"])

	restored, _, err := c.Rehydrate(ctx, "orders", body, headers)
	if err != nil {
		panic(err)
	}
	fmt.Println("restored:", bytes.Equal(restored, big), len(headers))

	small, address, _ := c.Offload(ctx, "orders", []byte("hello"), headers)
	fmt.Printf("small: %s %q\n", small, address)
	// Output:
	// sent body is the address: true true
	// headers: 1 1048576 abc
	// restored: true 1
	// small: hello ""
}

// A consumer without claimstash needs only the body and one header.
func ExampleReference() {
	body := []byte("mem://default/orders.9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa")
	headers := claimcheck.MapHeaders{"claimstash-version": "1", "claimstash-size": "11"}
	address, size, ok, err := claimcheck.Reference(body, headers)
	fmt.Println(ok, err, size)
	fmt.Println(address)
	// Output:
	// true <nil> 11
	// mem://default/orders.9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa
}

// Messages whose stash is gone are routed elsewhere instead of being nacked
// forever.
func ExampleOnRehydrateFailure() {
	ctx := context.Background()
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	c, _ := claimcheck.New(engine, claimcheck.OnRehydrateFailure(func(ctx context.Context, f claimcheck.Failure) error {
		if errors.Is(f.Err, stash.ErrNotFound) {
			fmt.Println("to the poison topic:", f.Topic)
			return nil // Handled: the transport acks it
		}
		return f.Err // Redeliver
	}))

	body := []byte("mem://default/orders.9a271f2a916b0b6ee6cecb2426f0b3206ef074578be55d9bc94f6f3fe3ab86aa")
	headers := claimcheck.MapHeaders{"claimstash-version": "1", "claimstash-size": "11"}
	_, _, err := c.Rehydrate(ctx, "orders", body, headers)
	fmt.Println(errors.Is(err, stash.ErrNotFound))
	fmt.Println(c.Decide(ctx, claimcheck.Failure{Topic: "orders", Body: body, Headers: headers, Err: err}))
	// Output:
	// true
	// to the poison topic: orders
	// handled <nil>
}

// Counters tally what the checker did.
func ExampleCounters() {
	ctx := context.Background()
	engine, _ := stash.New(stash.WithBackend(memstash.New()))
	var counters claimcheck.Counters
	c, _ := claimcheck.New(engine, claimcheck.WithThreshold(2000), claimcheck.WithObserver(&counters))
	for _, n := range []int{10, 5000, 20} {
		h := claimcheck.MapHeaders{}
		body, _, _ := c.Offload(ctx, "t", make([]byte, n), h)
		_, _, _ = c.Rehydrate(ctx, "t", body, h)
	}
	s := counters.Snapshot()
	fmt.Println(s.Offloaded, s.OffloadedBytes, s.Rehydrated, s.RehydrateFailures)
	// Output: 1 5000 1 0
}
