package links_test

import (
	"bytes"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strconv"
	"testing"
	"time"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/links"
	"github.com/claimstash/claimstash/stash/memstash"
)

// A stash found bad while the handler streams it, after its 200, reaches
// the fetching engine as stash.ErrIntegrity (permanent), not as a read cut
// short (transient, redelivered for ever): the handler says so in a
// trailer. Over a real loopback socket, for Retrieve, Open and a checker's
// Rehydrate.
func TestShareHandlerCorruptStashIsIntegrity(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	for _, size := range []int{10 << 10, 1 << 20} {
		t.Run(strconv.Itoa(size), func(t *testing.T) {
			st := create(t, e, fmt.Sprintf("c%d", size), payload(size))
			link, err := e.Share(ctx, st.String(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			if !s.store.Corrupt(st.Namespace(), st.Address.Key(), int64(size-1)) {
				t.Fatal("Corrupt found nothing")
			}
			client := s.client(t)
			got, err := client.Retrieve(ctx, link)
			if got != nil || !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("Retrieve of a corrupt stash through its link: %v, want ErrIntegrity", err)
			}
			if err != nil {
				checkReadable(t, err)
			}
			r, err := client.Open(ctx, link)
			if err != nil {
				t.Fatal(err)
			}
			_, err = io.ReadAll(r)
			r.Close()
			if !errors.Is(err, stash.ErrIntegrity) {
				t.Errorf("Open and read of a corrupt stash through its link: %v, want ErrIntegrity", err)
			}

			// A consumer's checker settles the message instead of
			// redelivering it.
			var routed error
			c, err := claimcheck.New(client, claimcheck.OnRehydrateFailure(func(_ context.Context, f claimcheck.Failure) error {
				routed = f.Err
				return nil
			}))
			if err != nil {
				t.Fatal(err)
			}
			h := claimcheck.MapHeaders{claimcheck.HeaderVersion: claimcheck.ContractVersion, claimcheck.HeaderSize: strconv.Itoa(size)}
			out, _, err := c.Rehydrate(ctx, "orders", []byte(link), h)
			if out != nil || !errors.Is(err, stash.ErrIntegrity) || !claimcheck.IsPermanent(err) {
				t.Fatalf("Rehydrate of a corrupt stash's link: %v; want a permanent ErrIntegrity", err)
			}
			d, _ := c.Decide(ctx, claimcheck.Failure{Topic: "orders", Body: []byte(link), Headers: h, Err: err})
			if d != claimcheck.Handled || routed == nil {
				t.Errorf("decision %v (failure handler saw %v), want %v: the message would be redelivered for ever", d, routed, claimcheck.Handled)
			}
		})
	}
}

// flaky is a store whose reads fail after failAfter stored bytes, as a
// backend whose connection drops does.
type flaky struct {
	*memstash.Store
	failAfter int64
}

var errReset = errors.New("connection reset by peer")

func (f *flaky) Get(ctx context.Context, ns, key string) (io.ReadCloser, *driver.Attributes, error) {
	rc, a, err := f.Store.Get(ctx, ns, key)
	if err != nil {
		return nil, nil, err
	}
	return &failingReader{ReadCloser: rc, left: f.failAfter}, a, nil
}

type failingReader struct {
	io.ReadCloser
	left int64
}

func (r *failingReader) Read(p []byte) (int, error) {
	if r.left <= 0 {
		return 0, errReset
	}
	if int64(len(p)) > r.left {
		p = p[:r.left]
	}
	n, err := r.ReadCloser.Read(p)
	r.left -= int64(n)
	return n, err
}

// A backend that fails while the handler streams a good stash is not the
// stash's fault: the fetching engine's error stays transient, so the
// message comes back once the backend does.
func TestShareHandlerBackendFailsMidStream(t *testing.T) {
	ctx := context.Background()
	store := &flaky{Store: memstash.New(), failAfter: 300 << 10}
	var h http.Handler
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
	t.Cleanup(srv.Close)
	signer, err := links.NewHMAC(srv.URL+"/share/", key("k1", 1))
	if err != nil {
		t.Fatal(err)
	}
	e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), stash.WithLinkSigner(signer))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { e.Close() })
	h = links.NewHandler(e, signer, links.WithLogger(slog.New(slog.DiscardHandler)))
	data := payload(1 << 20)
	st := create(t, e, "big", data)
	link, err := e.Share(ctx, st.String(), time.Minute)
	if err != nil {
		t.Fatal(err)
	}
	client := trusting(t, []string{srv.URL})
	got, err := client.Retrieve(ctx, link)
	if got != nil || err == nil {
		t.Fatalf("Retrieve through a failing backend: %v", err)
	}
	if errors.Is(err, stash.ErrIntegrity) || claimcheck.IsPermanent(err) {
		t.Errorf("a backend failing mid-stream: %v; want a transient error", err)
	}
	checkReadable(t, err)

	// Once the backend is back, the same link works.
	store.failAfter = 1 << 40
	if got, err := client.Retrieve(ctx, link); err != nil || !bytes.Equal(got.Data, data) {
		t.Fatalf("Retrieve once the backend is back: %v", err)
	}
}

// The protocol, as a client other than the engine sees it: a client that
// sends "TE: trailers" gets the payload's size in a header and, in the
// trailer the response declares, "verified" after a good stash or
// "failed: integrity" after a bad one. A client that does not (a browser,
// curl) gets Content-Length and no trailer, and a bad stash's response
// is cut short, as before.
func TestShareHandlerTrailer(t *testing.T) {
	ctx := context.Background()
	s := newShareServer(t)
	e := s.engine(t, key("k1", 1))
	data := payload(64 << 10)
	good := create(t, e, "good", data)
	bad := create(t, e, "bad", payload(64<<10))
	if !s.store.Corrupt(bad.Namespace(), bad.Address.Key(), 100) {
		t.Fatal("Corrupt found nothing")
	}
	get := func(st *stash.Stash, te bool) (*http.Response, []byte, error) {
		t.Helper()
		link, err := e.Share(ctx, st.String(), time.Minute)
		if err != nil {
			t.Fatal(err)
		}
		req, _ := http.NewRequest(http.MethodGet, link, nil)
		if te {
			req.Header.Set("TE", "trailers")
		}
		resp, err := s.srv.Client().Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, err := io.ReadAll(resp.Body)
		return resp, body, err
	}

	resp, body, err := get(good, true)
	if err != nil || !bytes.Equal(body, data) {
		t.Fatalf("GET with TE: trailers: %d bytes, %v", len(body), err)
	}
	if got := resp.Header.Get(links.HeaderSize); got != strconv.Itoa(len(data)) {
		t.Errorf("%s: %q, want %d", links.HeaderSize, got, len(data))
	}
	if _, ok := resp.Trailer[links.TrailerResult]; !ok {
		t.Errorf("the response declares no %s trailer (Trailer: %q)", links.TrailerResult, resp.Header.Values("Trailer"))
	}
	if got := resp.Trailer.Get(links.TrailerResult); got != links.ResultVerified {
		t.Errorf("trailer %s: %q, want %q", links.TrailerResult, got, links.ResultVerified)
	}

	resp, body, _ = get(bad, true)
	if len(body) >= len(data) {
		t.Errorf("a bad stash was sent whole: %d bytes", len(body))
	}
	if got, want := resp.Trailer.Get(links.TrailerResult), links.ResultFailed+"integrity"; got != want {
		t.Errorf("trailer %s after a bad stash: %q, want %q", links.TrailerResult, got, want)
	}

	resp, body, err = get(good, false)
	if err != nil || !bytes.Equal(body, data) || resp.ContentLength != int64(len(data)) || len(resp.Trailer) != 0 {
		t.Errorf("GET without TE: %d bytes, length %d, trailer %v, %v", len(body), resp.ContentLength, resp.Trailer, err)
	}
	_, body, err = get(bad, false)
	if err == nil || len(body) >= len(data) {
		t.Errorf("GET of a bad stash without TE: %d bytes, %v; want a body cut short", len(body), err)
	}
}

// A server that declares the trailer and then says the stash failed with a
// kind that means nothing here, or says nothing, ends in an error, never a
// payload, and not a permanent one unless the bytes themselves say so.
func TestFetcherTrailerFromOtherServers(t *testing.T) {
	ctx := context.Background()
	data := payload(8 << 10)
	for name, tc := range map[string]struct {
		result    string
		short     bool
		integrity bool
	}{
		"verified":          {result: links.ResultVerified},
		"failed integrity":  {result: links.ResultFailed + "integrity", short: true, integrity: true},
		"failed other":      {result: links.ResultFailed + "\x1b[2Jodd", short: true},
		"no trailer, short": {short: true},
		"garbage":           {result: "maybe", short: true},
	} {
		t.Run(name, func(t *testing.T) {
			srv := liar(t, func(w http.ResponseWriter, r *http.Request) {
				w.Header().Set("Trailer", links.TrailerResult)
				w.Header().Set(links.HeaderSize, strconv.Itoa(len(data)))
				w.WriteHeader(http.StatusOK)
				body := data
				if tc.short {
					body = data[:len(data)/2]
				}
				_, _ = w.Write(body)
				if tc.result != "" {
					w.Header().Set(links.TrailerResult, tc.result)
				}
			})
			link := digestLink(srv.URL, data)
			got, err := trusting(t, []string{srv.URL}).Retrieve(ctx, link)
			switch {
			case !tc.short:
				if err != nil || !bytes.Equal(got.Data, data) {
					t.Fatalf("Retrieve: %v", err)
				}
				return
			case got != nil || err == nil:
				t.Fatalf("Retrieve of a short body returned data (%v)", err)
			case errors.Is(err, stash.ErrIntegrity) != tc.integrity:
				t.Errorf("Retrieve: %v; ErrIntegrity: %v, want %v", err, errors.Is(err, stash.ErrIntegrity), tc.integrity)
			}
			checkReadable(t, err)
		})
	}
}

// badAtOpen is a store whose reads fail at once with err, as a backend
// that checks what it holds (a length or a checksum) does.
type badAtOpen struct {
	*memstash.Store
	err error
}

func (b *badAtOpen) Get(context.Context, string, string) (io.ReadCloser, *driver.Attributes, error) {
	return nil, nil, b.err
}

// A stash found bad before the handler's 200 (its backend reports an
// integrity failure, or it is over the serving engine's limit) is just as
// permanent to the fetching engine as one found bad mid-stream; a backend
// that is down is not.
func TestShareHandlerBadBeforeStatus(t *testing.T) {
	ctx := context.Background()
	for name, tc := range map[string]struct {
		err       error
		want      error
		permanent bool
	}{
		"integrity": {err: fmt.Errorf("%w: stored length disagrees", driver.ErrIntegrity), want: stash.ErrIntegrity, permanent: true},
		"too large": {err: fmt.Errorf("%w: over the limit", driver.ErrTooLarge), want: stash.ErrTooLarge, permanent: true},
		"down":      {err: errReset},
	} {
		t.Run(name, func(t *testing.T) {
			store := &badAtOpen{Store: memstash.New()}
			var h http.Handler
			srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { h.ServeHTTP(w, r) }))
			t.Cleanup(srv.Close)
			signer, err := links.NewHMAC(srv.URL+"/share/", key("k1", 1))
			if err != nil {
				t.Fatal(err)
			}
			e, err := stash.New(stash.WithBackend(store), stash.WithInlineMax(-1), stash.WithLinkSigner(signer))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { e.Close() })
			h = links.NewHandler(e, signer, links.WithLogger(slog.New(slog.DiscardHandler)))
			st := create(t, e, "doc", payload(4<<10))
			link, err := e.Share(ctx, st.String(), time.Minute)
			if err != nil {
				t.Fatal(err)
			}
			store.err = tc.err
			got, err := trusting(t, []string{srv.URL}).Retrieve(ctx, link)
			switch {
			case got != nil || err == nil:
				t.Fatalf("Retrieve returned data (%v)", err)
			case tc.want != nil && !errors.Is(err, tc.want):
				t.Errorf("Retrieve: %v, want %v", err, tc.want)
			case claimcheck.IsPermanent(err) != tc.permanent:
				t.Errorf("Retrieve: %v: permanent %v, want %v", err, claimcheck.IsPermanent(err), tc.permanent)
			}
			checkReadable(t, err)
			if code := status(t, http.DefaultClient, link); code != http.StatusInternalServerError {
				t.Errorf("GET: %d, want 500", code)
			}
		})
	}
}
