package stashtest

import (
	"io"
	"math/rand/v2"
	"strconv"
	"strings"
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

// JSONPayload returns n bytes of JSON-like text, the same for the same seed:
// an array of order records (ids, timestamps, customers with names, e-mail
// addresses and cities, a variable number of line items, free-text notes)
// whose values all come from one pseudo-random stream, so no stretch of it
// repeats: a compressor's window finds only the redundancy that real
// records have (field names, small vocabularies, digits), never a copy of an
// earlier tile. It is valid JSON only by accident of its length.
func JSONPayload(n int, seed uint64) []byte {
	return jsonRecords(n, seed)
}

var (
	jsonStatuses = []string{"pending", "paid", "shipped", "delivered", "refunded", "cancelled"}
	jsonFirst    = []string{"Ada", "Alan", "Grace", "Edsger", "Barbara", "Donald", "Frances", "John", "Margaret", "Ken", "Dennis", "Radia", "Leslie", "Niklaus", "Sophie", "Tim", "Katherine", "Linus", "Anita", "Brian"}
	jsonLast     = []string{"Lovelace", "Turing", "Hopper", "Dijkstra", "Liskov", "Knuth", "Allen", "McCarthy", "Hamilton", "Thompson", "Ritchie", "Perlman", "Lamport", "Wirth", "Wilson", "Berners-Lee", "Johnson", "Torvalds", "Borg", "Kernighan"}
	jsonCities   = []string{"Lisbon", "Oslo", "Nairobi", "Osaka", "Lima", "Austin", "Krakow", "Dublin", "Pune", "Porto", "Seoul", "Quito", "Leeds", "Cork", "Lyon", "Perth"}
	jsonDomains  = []string{"example.com", "example.org", "mail.example.net", "corp.example"}
	jsonWords    = []string{"please", "leave", "at", "the", "door", "gift", "wrap", "fragile", "call", "before", "delivery", "back", "entrance", "no", "signature", "needed", "second", "floor", "ring", "bell", "twice", "office", "reception", "weekend", "only", "urgent"}
	jsonCurrency = []string{"EUR", "USD", "GBP", "JPY", "NOK"}
)

func jsonRecords(n int, seed uint64) []byte {
	r := rand.New(rand.NewPCG(seed, 0x5eed))
	p := make([]byte, 0, n+1024)
	p = append(p, '[')
	ts := int64(1_767_225_600_000) + int64(seed%1000)*86_400_000 // milliseconds
	for i := 0; len(p) < n; i++ {
		ts += int64(r.IntN(5000))
		first, last := jsonFirst[r.IntN(len(jsonFirst))], jsonLast[r.IntN(len(jsonLast))]
		p = append(p, `{"id":"ord-`...)
		p = strconv.AppendUint(p, r.Uint64()>>20, 36)
		p = append(p, `","seq":`...)
		p = strconv.AppendInt(p, int64(i), 10)
		p = append(p, `,"created_at":`...)
		p = strconv.AppendInt(p, ts, 10)
		p = append(p, `,"status":"`...)
		p = append(p, jsonStatuses[r.IntN(len(jsonStatuses))]...)
		p = append(p, `","customer":{"id":`...)
		p = strconv.AppendInt(p, int64(r.IntN(2_000_000)), 10)
		p = append(p, `,"name":"`...)
		p = append(p, first...)
		p = append(p, ' ')
		p = append(p, last...)
		p = append(p, `","email":"`...)
		p = append(p, strings.ToLower(first)...)
		p = append(p, '.')
		p = strconv.AppendInt(p, int64(r.IntN(10000)), 10)
		p = append(p, '@')
		p = append(p, jsonDomains[r.IntN(len(jsonDomains))]...)
		p = append(p, `","city":"`...)
		p = append(p, jsonCities[r.IntN(len(jsonCities))]...)
		p = append(p, `","zip":"`...)
		p = strconv.AppendInt(p, int64(10000+r.IntN(90000)), 10)
		p = append(p, `"},"currency":"`...)
		p = append(p, jsonCurrency[r.IntN(len(jsonCurrency))]...)
		p = append(p, `","items":[`...)
		total := 0
		for j, items := 0, 1+r.IntN(4); j < items; j++ {
			if j > 0 {
				p = append(p, ',')
			}
			price := 99 + r.IntN(99_900)
			qty := 1 + r.IntN(9)
			total += price * qty
			p = append(p, `{"sku":"SKU-`...)
			p = strconv.AppendInt(p, int64(r.IntN(1_000_000)), 10)
			p = append(p, `","qty":`...)
			p = strconv.AppendInt(p, int64(qty), 10)
			p = append(p, `,"price":`...)
			p = strconv.AppendFloat(p, float64(price)/100, 'f', 2, 64)
			p = append(p, '}')
		}
		p = append(p, `],"total":`...)
		p = strconv.AppendFloat(p, float64(total)/100, 'f', 2, 64)
		if r.IntN(3) == 0 {
			p = append(p, `,"note":"`...)
			for j, words := 0, 2+r.IntN(8); j < words; j++ {
				if j > 0 {
					p = append(p, ' ')
				}
				p = append(p, jsonWords[r.IntN(len(jsonWords))]...)
			}
			p = append(p, '"')
		}
		p = append(p, `},`...)
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
