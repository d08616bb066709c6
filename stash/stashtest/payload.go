package stashtest

import (
	"io"
	"math/rand/v2"
	"strconv"
)

// RandomPayload returns n incompressible bytes, the same for the same seed.
func RandomPayload(n int, seed uint64) []byte {
	var key [32]byte
	for i := range 8 {
		key[i] = byte(seed >> (8 * i))
	}
	p := make([]byte, n)
	_, _ = rand.NewChaCha8(key).Read(p)
	return p
}

// JSONPayload returns n bytes of JSON-like text (an array of order records
// with varying fields) that zstd compresses several times over, the same for
// the same seed. It is valid JSON only by accident of its length. Beyond
// 1 MiB it repeats with a period of 1 MiB, which keeps large payloads cheap
// to make and to compress (under the race detector too).
func JSONPayload(n int, seed uint64) []byte {
	const period = 1 << 20
	if n <= period {
		return jsonRecords(n, seed)
	}
	tile := jsonRecords(period, seed)
	p := make([]byte, n)
	for off := 0; off < n; off += period {
		copy(p[off:], tile)
	}
	return p
}

func jsonRecords(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, 0, n+256)
	p = append(p, '[')
	statuses := []string{"pending", "paid", "shipped", "delivered", "refunded"}
	for i := 0; len(p) < n; i++ {
		p = append(p, `{"id":`...)
		p = strconv.AppendInt(p, int64(i), 10)
		p = append(p, `,"customer":"cust-`...)
		p = strconv.AppendInt(p, int64(r.IntN(5000)), 10)
		p = append(p, `","status":"`...)
		p = append(p, statuses[r.IntN(len(statuses))]...)
		p = append(p, `","amount":`...)
		p = strconv.AppendFloat(p, float64(r.IntN(1000000))/100, 'f', 2, 64)
		p = append(p, `,"items":[{"sku":"SKU-`...)
		p = strconv.AppendInt(p, int64(r.IntN(100000)), 10)
		p = append(p, `","qty":`...)
		p = strconv.AppendInt(p, int64(1+r.IntN(9)), 10)
		p = append(p, `}]},`...)
	}
	return p[:n]
}

// chunkyReader hands out at most max bytes per Read and hides every other
// method of what it wraps, as a network stream would.
type chunkyReader struct {
	r   io.Reader
	max int
}

func (c *chunkyReader) Read(p []byte) (int, error) {
	if len(p) > c.max {
		p = p[:c.max]
	}
	return c.r.Read(p)
}
