package driver_test

import (
	"bytes"
	"context"
	"fmt"
	"io"
	"sync/atomic"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
)

// putCounter counts the bytes its driver's Put takes.
type putCounter struct {
	driver.Driver
	n atomic.Int64
}

func (c *putCounter) Put(ctx context.Context, ns, key string, r io.Reader, size int64, a *driver.Attributes) error {
	c.n.Add(size)
	return c.Driver.Put(ctx, ns, key, r, size, a)
}

// A wrapper that serves Put itself keeps, through Wrap, the optional
// capabilities of the driver it wraps: here memstash's driver.Updater and
// driver.Lister, which a bare struct embedding driver.Driver would hide.
func ExampleWrap() {
	store := memstash.New()
	counter := &putCounter{Driver: store}
	d := driver.Wrap(counter, store)

	ctx := context.Background()
	_ = d.Put(ctx, "ns", "greeting", bytes.NewReader([]byte("hello")), 5, &driver.Attributes{Size: 5, StoredSize: 5})
	_, canUpdate := d.(driver.Updater)
	_, canList := d.(driver.Lister)
	_, canSign := d.(driver.Signer)
	fmt.Println(counter.n.Load(), canUpdate, canList, canSign)
	// Output: 5 true true false
}
