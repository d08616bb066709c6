package kstash_test

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"log"

	"github.com/claimstash/claimstash/interop/kstash"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/memstash"
)

// The pipeline recipe: kstash's producers put stash addresses in the fields
// of JSON messages. A Go consumer resolves them with Retrieve; a Go
// producer makes them with Create, for kstash.retrieve on the Python side.
// With s3stash instead of memstash the same code reads and writes the
// buckets that Python's kstash uses.
func Example_pipeline() {
	ctx := context.Background()
	engine, err := stash.New(stash.WithBackend(memstash.New()))
	if err != nil {
		log.Fatal(err)
	}
	store, err := kstash.New(engine, kstash.WithNamespace("stashes"))
	if err != nil {
		log.Fatal(err)
	}

	// Producer: as kstash.create("context", {...}, namespace="stashes").
	report := kstash.Map{{Key: "as_of", Value: "today"}, {Key: "bin", Value: bytes.Repeat([]byte("0"), 512<<10)}}
	s, err := store.Create(ctx, "context", report)
	if err != nil {
		log.Fatal(err)
	}
	color, err := store.Create(ctx, "colorcode", 12)
	if err != nil {
		log.Fatal(err)
	}
	body, _ := json.Marshal(map[string]string{"command": "gen_report", "context": s.String(), "color": color.String()})
	fmt.Println(string(body))

	// Consumer: decode the message, then resolve the fields that hold addresses.
	var msg struct{ Command, Context, Color string }
	if err := json.Unmarshal(body, &msg); err != nil {
		log.Fatal(err)
	}
	got, err := store.Retrieve(ctx, msg.Context)
	if err != nil {
		log.Fatal(err) // errors.Is(err, stash.ErrIntegrity), stash.ErrNotFound, ...
	}
	m := got.Value.(kstash.Map)
	asOf, _ := m.Get("as_of")
	bin, _ := m.Get("bin")
	c, err := store.Retrieve(ctx, msg.Color)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Println(msg.Command, asOf, len(bin.([]byte)), c.Value)
	// Output:
	// {"color":"inline://stashes/colorcode?data=DA%3D%3D","command":"gen_report","context":"mem://stashes/context.c6ab205fe81dcad3eec3ab48b96b0618"}
	// gen_report today 524288 12
}

func ExampleMarshal() {
	b, err := kstash.Marshal(kstash.Map{{Key: "data", Value: 123}})
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%x\n", b)
	v, err := kstash.Unmarshal(b)
	if err != nil {
		log.Fatal(err)
	}
	fmt.Printf("%#v\n", v)
	// Output:
	// 81a4646174617b
	// kstash.Map{kstash.Pair{Key:"data", Value:123}}
}
