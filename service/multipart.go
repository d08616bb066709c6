package service

import (
	"bytes"
	"context"
	"crypto/md5"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"hash"
	"io"
	"maps"
	"net/http"
	"net/url"
	"sort"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"
	"golang.org/x/sync/errgroup"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash/driver"
)

// Multipart uploads: objectstore's protocol, with S3's shape. A client
// initiates an upload for a key, with the object's metadata; puts parts
// 1 to MaxParts, in any order and in parallel, each answered with an etag;
// may list the parts stored; and completes the upload with the part
// numbers and etags that make the object, in order, or aborts it.
//
// The state lives in the driver beside the objects of the upload's scopes,
// under reserved names (see storageKey): a record, whose attributes hold
// the object's metadata and the highest part number stored, and one object
// per part. Both expire MultipartTTL after the upload was initiated, so
// that an abandoned upload is swept like any expired object. Only drivers
// with an atomic read-modify-write of attributes (driver.Modifier) serve
// them; over any other every multipart request is 501.
const (
	// MaxParts is the highest part number.
	MaxParts = 10000
	// MaxListParts bounds a page of list-parts (and is its default).
	MaxListParts = 1000
	// MultipartTTL is how long an upload may take from initiate to
	// complete; past it, its parts are gone.
	MultipartTTL = 7 * 24 * time.Hour
	// maxCompleteBody bounds a complete request's JSON.
	maxCompleteBody = 4 << 20
	// probeConcurrency bounds the driver calls one request makes at once.
	probeConcurrency = 16
)

// Query parameters of multipart requests.
const (
	queryUploadID   = "upload_id"
	queryPartNumber = "part_number"
	queryMaxParts   = "max_parts"
	queryMarker     = "part_number_marker"
)

// Attribute metadata of an upload's record and parts. A colon is never in
// an x-snme- header name, so none collides with custom metadata.
const (
	mpLast    = "sn:mp:last" // the record: highest part number stored
	mpTTL     = "sn:mp:ttl"  // the record: the object's time-to-live, ns
	mpTTI     = "sn:mp:tti"  // the record: the object's time-to-idle, ns
	mpDecoded = "sn:mp:size" // the record: the decoded size given
	mpETag    = "sn:mp:etag" // a part: its etag
)

var (
	errNoMultipart = status(http.StatusNotImplemented, "multipart uploads are not supported by this server's storage: send the object in one PUT")
	errNoUpload    = status(http.StatusNotFound, "no such multipart upload (completed, aborted, expired, or for another key)")
)

// multipartRoutes are the routes of objectstore's multipart uploads:
// initiate and abort, parts, complete.
var multipartRoutes = [...]string{"/v1/objects:multipart/", "/v1/objects:multipart:parts/", "/v1/objects:multipart:complete/"}

// multipartRoute returns the multipart-upload route that path starts with,
// or "".
func multipartRoute(path string) string {
	for _, p := range multipartRoutes {
		if strings.HasPrefix(path, p) {
			return p
		}
	}
	return ""
}

// upload names one multipart upload: its object path and id.
type upload struct {
	p  ObjectPath
	id string
}

func (u upload) ns() string     { return storageNamespace(u.p.Usecase) }
func (u upload) record() string { return multipartKey(u.p.Scopes, "upload", u.id, u.p.Key) }
func (u upload) part(n int) string {
	return multipartKey(u.p.Scopes, "part", u.id, u.p.Key, strconv.Itoa(n))
}

// multipartKey is the driver key of an upload's state: the key names
// the upload's object too, so that an upload id given with another key
// (or other scopes) finds nothing.
func multipartKey(scopes []Scope, parts ...string) string {
	return scopePrefix(scopes) + multipartName + "." + sha(strings.Join(parts, "\x00"))
}

// multipart serves the multipart routes: the path and the token are
// checked first, so only a caller the token lets in learns anything.
func (s *Server) multipart(w http.ResponseWriter, r *http.Request, route, rest string) {
	p, err := parseObjectPath(rest, s.maxScope)
	if err != nil {
		s.fail(w, r, &apiError{http.StatusBadRequest, err})
		return
	}
	var perm osauth.Permission
	var serve func(http.ResponseWriter, *http.Request, ObjectPath, driver.Modifier) error
	switch {
	case route == multipartRoutes[0] && r.Method == http.MethodPost && p.Key == "":
		perm, serve = osauth.Write, s.initiate
	case route == multipartRoutes[0] && r.Method == http.MethodPut && p.Key != "":
		perm, serve = osauth.Write, s.initiate
	case route == multipartRoutes[0] && r.Method == http.MethodDelete && p.Key != "":
		perm, serve = osauth.Delete, s.abort
	case route == multipartRoutes[1] && r.Method == http.MethodPut && p.Key != "":
		perm, serve = osauth.Write, s.putPart
	case route == multipartRoutes[1] && (r.Method == http.MethodGet || r.Method == http.MethodHead) && p.Key != "":
		perm, serve = osauth.Read, s.listParts
	case route == multipartRoutes[2] && r.Method == http.MethodPost && p.Key != "":
		perm, serve = osauth.Write, s.complete
	default:
		allow := map[string]string{
			multipartRoutes[0]: "POST (without a key), PUT, DELETE",
			multipartRoutes[1]: "GET, PUT",
			multipartRoutes[2]: "POST",
		}[route]
		if p.Key == "" && r.Method != http.MethodPost {
			s.fail(w, r, status(http.StatusBadRequest, "no key in the path"))
			return
		}
		w.Header().Set("Allow", allow)
		s.fail(w, r, status(http.StatusMethodNotAllowed, "method %s not allowed here (allowed: %s)", r.Method, allow))
		return
	}
	if err := s.authorize(r, p, perm); err != nil {
		s.fail(w, r, err)
		return
	}
	mod, ok := s.d.(driver.Modifier)
	if !ok {
		writeError(w, http.StatusNotImplemented, errNoMultipart) // not a failure to log
		return
	}
	if err := serve(w, r, p, mod); err != nil {
		s.fail(w, r, err)
	}
}

// initiate starts an upload: PUT with the key, or POST for a key the
// server makes. The headers are the object's metadata, as for a PUT.
func (s *Server) initiate(w http.ResponseWriter, r *http.Request, p ObjectPath, _ driver.Modifier) error {
	m, err := parseMeta(r.Header)
	if err != nil {
		return err
	}
	if p.Key == "" {
		p.Key = uuid.NewString()
	}
	u := upload{p: p, id: uuid.NewString()}
	now := s.now().UTC()
	a := m.attrs(now, "", 0)
	a.Size, a.ExpiresAt, a.TTI = 0, now.Add(MultipartTTL), 0
	if a.Metadata == nil {
		a.Metadata = map[string]string{}
	}
	a.Metadata[mpLast] = "0"
	if m.exp.TTL > 0 {
		a.Metadata[mpTTL] = strconv.FormatInt(int64(m.exp.TTL), 10)
	}
	if m.exp.TTI > 0 {
		a.Metadata[mpTTI] = strconv.FormatInt(int64(m.exp.TTI), 10)
	}
	if m.decodedSize >= 0 {
		a.Metadata[mpDecoded] = strconv.FormatInt(m.decodedSize, 10)
	}
	if err := s.d.Put(r.Context(), u.ns(), u.record(), bytes.NewReader(nil), 0, a); err != nil {
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"key": p.Key, "upload_id": u.id})
	return nil
}

// metaOf is the object's metadata an upload's record holds.
func metaOf(a *driver.Attributes) *meta {
	m := &meta{contentType: a.ContentType, encoding: a.Encoding, origin: a.Origin, decodedSize: -1}
	for k, v := range a.Metadata {
		switch k {
		case metaFilename:
			m.filename = v
		case mpTTL:
			n, _ := strconv.ParseInt(v, 10, 64)
			m.exp.TTL = time.Duration(n)
		case mpTTI:
			n, _ := strconv.ParseInt(v, 10, 64)
			m.exp.TTI = time.Duration(n)
		case mpDecoded:
			if n, err := strconv.ParseInt(v, 10, 64); err == nil {
				m.decodedSize = n
			}
		default:
			if strings.HasPrefix(k, "sn:") {
				continue
			}
			if m.custom == nil {
				m.custom = map[string]string{}
			}
			m.custom[k] = v
		}
	}
	return m
}

// uploadOf parses the upload id of a multipart request.
func uploadOf(r *http.Request, p ObjectPath) (upload, url.Values, error) {
	q, err := url.ParseQuery(r.URL.RawQuery)
	if err != nil {
		return upload{}, nil, status(http.StatusBadRequest, "query: %v", err)
	}
	id := q.Get(queryUploadID)
	if id == "" {
		return upload{}, nil, status(http.StatusBadRequest, "no upload_id in the query")
	}
	if v, err := uuid.Parse(id); err != nil || v.String() != id {
		return upload{}, nil, status(http.StatusBadRequest, "upload_id %q is not one this server makes", clip(id))
	}
	return upload{p: p, id: id}, q, nil
}

// number parses a decimal query value in [lo, hi]; def when absent.
func number(q url.Values, name string, lo, hi, def int) (int, error) {
	v, ok := q[name]
	if !ok {
		return def, nil
	}
	n, err := strconv.Atoi(v[0])
	if err != nil || len(v[0]) == 0 || v[0][0] < '0' || v[0][0] > '9' || n < lo || n > hi {
		return 0, status(http.StatusBadRequest, "%s %q: want a number from %d to %d", name, clip(v[0]), lo, hi)
	}
	return n, nil
}

// liveRecord returns the attributes of an upload's record, or errNoUpload.
func (s *Server) liveRecord(ctx context.Context, u upload) (*driver.Attributes, error) {
	a, err := s.d.Stat(ctx, u.ns(), u.record())
	if errors.Is(err, driver.ErrNotFound) || err == nil && a.Expired(s.now().UTC()) {
		return nil, errNoUpload
	}
	return a, err
}

func lastPart(a *driver.Attributes) int {
	n, _ := strconv.Atoi(a.Metadata[mpLast])
	return min(max(n, 0), MaxParts)
}

// putPart stores one part. It needs a Content-Length; with Content-MD5 the
// part is stored only if its bytes match. A part put again replaces the
// one before, and gets a new etag.
func (s *Server) putPart(w http.ResponseWriter, r *http.Request, p ObjectPath, mod driver.Modifier) error {
	u, q, err := uploadOf(r, p)
	if err != nil {
		return err
	}
	if _, ok := q[queryPartNumber]; !ok {
		return status(http.StatusBadRequest, "no part_number in the query")
	}
	n, err := number(q, queryPartNumber, 1, MaxParts, 0)
	if err != nil {
		return err
	}
	if r.ContentLength < 0 {
		return status(http.StatusLengthRequired, "a part needs a Content-Length")
	}
	if r.ContentLength > s.maxBody {
		return status(http.StatusRequestEntityTooLarge, "part of %d bytes: at most %d", r.ContentLength, s.maxBody)
	}
	var body io.Reader = r.Body
	if v := r.Header.Get("Content-MD5"); v != "" {
		want, err := base64.StdEncoding.DecodeString(strings.TrimSpace(v))
		if err != nil || len(want) != md5.Size {
			return status(http.StatusBadRequest, "Content-MD5 %q: want the base64 of 16 bytes", clip(v))
		}
		body = &md5Check{r: r.Body, h: md5.New(), want: want, left: r.ContentLength}
	}
	ctx := r.Context()
	rec, err := s.liveRecord(ctx, u)
	if err != nil {
		return err
	}
	ns, key := u.ns(), u.part(n)
	if err := s.d.Delete(ctx, ns, key); err != nil && !errors.Is(err, driver.ErrNotFound) {
		return err
	}
	now := s.now().UTC()
	etag := rand.Text()
	a := &driver.Attributes{
		Size: r.ContentLength, StoredSize: r.ContentLength, Created: now, LastAccess: now,
		ExpiresAt: rec.ExpiresAt, Metadata: map[string]string{mpETag: etag},
	}
	switch err := s.d.Put(ctx, ns, key, body, r.ContentLength, a); {
	case errors.Is(err, errBadDigest):
		return &apiError{http.StatusBadRequest, err}
	case errors.Is(err, io.ErrUnexpectedEOF):
		return &apiError{http.StatusBadRequest, fmt.Errorf("part shorter than its length: %w", err)}
	case errors.Is(err, driver.ErrExists):
		return status(http.StatusConflict, "part %d is being put by another request at the same time", n)
	case err != nil:
		return err
	}
	// Record the part number for list-parts. An upload aborted or
	// completed meanwhile takes its part with it.
	_, err = mod.ModifyAttributes(ctx, ns, u.record(), func(have *driver.Attributes) *driver.Attributes {
		if lastPart(have) >= n {
			return nil
		}
		b := *have
		b.Metadata = maps.Clone(have.Metadata)
		if b.Metadata == nil {
			b.Metadata = map[string]string{}
		}
		b.Metadata[mpLast] = strconv.Itoa(n)
		return &b
	})
	if err != nil {
		if derr := s.d.Delete(context.WithoutCancel(ctx), ns, key); derr != nil && !errors.Is(derr, driver.ErrNotFound) {
			s.log.Warn("service: removing a part of a multipart upload", "err", derr)
		}
		if errors.Is(err, driver.ErrNotFound) {
			return errNoUpload
		}
		return err
	}
	writeJSON(w, http.StatusOK, map[string]string{"etag": etag})
	return nil
}

var errBadDigest = errors.New("the part does not match its Content-MD5")

// md5Check reads a part, failing its last read when the bytes do not
// match their Content-MD5, so that the driver stores nothing.
type md5Check struct {
	r    io.Reader
	h    hash.Hash
	want []byte
	left int64
}

func (c *md5Check) Read(p []byte) (int, error) {
	n, err := c.r.Read(p)
	c.h.Write(p[:n])
	c.left -= int64(n)
	if c.left <= 0 && (err == nil || err == io.EOF) && !bytes.Equal(c.h.Sum(nil), c.want) {
		return n, errBadDigest
	}
	return n, err
}

// partInfo is a stored part, as list-parts gives it.
type partInfo struct {
	Number       int    `json:"part_number"`
	ETag         string `json:"etag"`
	LastModified string `json:"last_modified"`
	Size         int64  `json:"size"`
}

// stats stats the parts numbered in nums, probeConcurrency at a time,
// and returns the attributes of those stored (nil for the others).
func (s *Server) stats(ctx context.Context, u upload, nums []int) ([]*driver.Attributes, error) {
	out := make([]*driver.Attributes, len(nums))
	now := s.now().UTC()
	g, gctx := errgroup.WithContext(ctx)
	g.SetLimit(probeConcurrency)
	for i, n := range nums {
		g.Go(func() error {
			a, err := s.d.Stat(gctx, u.ns(), u.part(n))
			switch {
			case errors.Is(err, driver.ErrNotFound):
			case err != nil:
				return err
			case !a.Expired(now):
				out[i] = a
			}
			return nil
		})
	}
	return out, g.Wait()
}

// listParts lists the parts stored, in order: at most max_parts
// (MaxListParts) after part_number_marker.
func (s *Server) listParts(w http.ResponseWriter, r *http.Request, p ObjectPath, _ driver.Modifier) error {
	u, q, err := uploadOf(r, p)
	if err != nil {
		return err
	}
	limit, err := number(q, queryMaxParts, 1, MaxListParts, MaxListParts)
	if err != nil {
		return err
	}
	marker, err := number(q, queryMarker, 0, MaxParts, 0)
	if err != nil {
		return err
	}
	rec, err := s.liveRecord(r.Context(), u)
	if err != nil {
		return err
	}
	last := lastPart(rec)
	parts := []partInfo{}
	next := marker
	for next < last && len(parts) < limit {
		var nums []int
		for n := next + 1; n <= last && len(nums) < limit-len(parts); n++ {
			nums = append(nums, n)
		}
		as, err := s.stats(r.Context(), u, nums)
		if err != nil {
			return err
		}
		for i, a := range as {
			if a != nil {
				parts = append(parts, partInfo{nums[i], a.Metadata[mpETag], a.Created.UTC().Format(timeFormat), a.StoredSize})
			}
		}
		next = nums[len(nums)-1]
	}
	resp := struct {
		Parts     []partInfo `json:"parts"`
		Truncated bool       `json:"is_truncated"`
		Next      *int       `json:"next_part_number_marker,omitempty"`
	}{Parts: parts, Truncated: next < last}
	if resp.Truncated {
		resp.Next = &next
	}
	writeJSON(w, http.StatusOK, resp)
	return nil
}

// abort ends an upload and removes its parts.
func (s *Server) abort(w http.ResponseWriter, r *http.Request, p ObjectPath, _ driver.Modifier) error {
	u, _, err := uploadOf(r, p)
	if err != nil {
		return err
	}
	rec, err := s.liveRecord(r.Context(), u)
	if err != nil {
		return err
	}
	if err := s.d.Delete(r.Context(), u.ns(), u.record()); err != nil {
		if errors.Is(err, driver.ErrNotFound) {
			return errNoUpload
		}
		return err
	}
	s.dropParts(r.Context(), u, lastPart(rec))
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// dropParts deletes parts 1 to last, after the record is gone: a part put
// meanwhile removes itself when it finds no record. What cannot be
// deleted now is logged, and expires with the upload.
func (s *Server) dropParts(ctx context.Context, u upload, last int) {
	ctx = context.WithoutCancel(ctx)
	var g errgroup.Group // every part is tried: no context to cancel the rest
	g.SetLimit(probeConcurrency)
	for n := 1; n <= last; n++ {
		g.Go(func() error {
			if err := s.d.Delete(ctx, u.ns(), u.part(n)); err != nil && !errors.Is(err, driver.ErrNotFound) {
				return err
			}
			return nil
		})
	}
	if err := g.Wait(); err != nil {
		s.log.Warn("service: removing the parts of a multipart upload; they expire with it", "expires_in", MultipartTTL.String(), "err", err)
	}
}

// completeError is objectstore's answer to a complete that fails once
// the 200 has gone out: {"error":{"code":…,"message":…}}, codes as S3's.
type completeError struct {
	Code    string `json:"code"`
	Message string `json:"message"`
}

func (e *completeError) Error() string { return e.Message }

// complete assembles the parts named, in order, into the object, which
// replaces any object under the key, then removes the upload. Once the
// request checks out the answer is 200, with a space every second while
// the parts are copied (so that no proxy takes the wait for a dead
// connection), then {"key":…} or {"error":…}.
func (s *Server) complete(w http.ResponseWriter, r *http.Request, p ObjectPath, _ driver.Modifier) error {
	u, _, err := uploadOf(r, p)
	if err != nil {
		return err
	}
	var req struct {
		Parts []struct {
			Number int    `json:"part_number"`
			ETag   string `json:"etag"`
		} `json:"parts"`
	}
	dec := json.NewDecoder(http.MaxBytesReader(w, r.Body, maxCompleteBody))
	if err := dec.Decode(&req); err != nil {
		if _, ok := errors.AsType[*http.MaxBytesError](err); ok {
			return status(http.StatusRequestEntityTooLarge, "complete: a body of at most %d bytes", maxCompleteBody)
		}
		return status(http.StatusBadRequest, "complete: want {\"parts\":[{\"part_number\":…,\"etag\":…},…]}: %v", err)
	}
	ctx := r.Context()
	rec, err := s.liveRecord(ctx, u)
	if err != nil {
		return err
	}
	if len(req.Parts) == 0 {
		return status(http.StatusBadRequest, "complete: no parts")
	}
	if len(req.Parts) > MaxParts {
		return status(http.StatusBadRequest, "complete: %d parts, at most %d", len(req.Parts), MaxParts)
	}
	nums := make([]int, len(req.Parts))
	for i, pt := range req.Parts {
		nums[i] = pt.Number
	}
	h := w.Header()
	h[HeaderContentType] = []string{"application/json"}
	var res any
	if !sort.IntsAreSorted(nums) || nums[0] < 1 || nums[len(nums)-1] > MaxParts {
		res = map[string]any{"error": &completeError{"InvalidPartOrder", "parts must be listed in ascending order of part number, each from 1 to " + strconv.Itoa(MaxParts)}}
	}
	var as []*driver.Attributes
	if res == nil {
		if as, err = s.stats(ctx, u, nums); err != nil {
			return err
		}
		var total int64
		for i, a := range as {
			switch {
			case i > 0 && nums[i] == nums[i-1]:
				res = map[string]any{"error": &completeError{"InvalidPartOrder", fmt.Sprintf("part %d is listed twice", nums[i])}}
			case a == nil || a.Metadata[mpETag] != req.Parts[i].ETag:
				res = map[string]any{"error": &completeError{"InvalidPart", fmt.Sprintf("part %d: none stored with etag %q", nums[i], clip(req.Parts[i].ETag))}}
			}
			if res != nil {
				break
			}
			total += a.StoredSize
		}
		if res == nil && total > s.maxBody {
			res = map[string]any{"error": &completeError{"EntityTooLarge", fmt.Sprintf("the parts make %d bytes: at most %d", total, s.maxBody)}}
		}
		if res == nil {
			var sent bool
			res, sent = s.keepAlive(w, func() any { return s.assemble(ctx, u, rec, nums, as, total) })
			if sent {
				b, _ := json.Marshal(res)
				_, _ = w.Write(append(b, '\n'))
				return nil
			}
		}
	}
	writeJSON(w, http.StatusOK, res)
	return nil
}

// keepAlive runs fn and returns what it returns. While fn runs it sends,
// after a second, the 200 and then a space every second; sent reports
// whether it did.
func (s *Server) keepAlive(w http.ResponseWriter, fn func() any) (v any, sent bool) {
	done := make(chan any, 1)
	go func() { done <- fn() }()
	t := time.NewTimer(time.Second)
	defer t.Stop()
	rc := http.NewResponseController(w)
	for {
		select {
		case v := <-done:
			return v, sent
		case <-t.C:
			if !sent {
				w.WriteHeader(http.StatusOK)
				sent = true
			}
			if _, err := w.Write([]byte(" ")); err == nil {
				_ = rc.Flush()
			}
			t.Reset(time.Second)
		}
	}
}

// assemble copies the parts into the object and removes the upload. It
// returns the answer to the complete.
func (s *Server) assemble(ctx context.Context, u upload, rec *driver.Attributes, nums []int, as []*driver.Attributes, total int64) any {
	m := metaOf(rec)
	body := &partsReader{ctx: ctx, s: s, u: u, nums: nums, as: as}
	defer body.close()
	ns, key := storageNamespace(u.p.Usecase), storageKey(u.p.Scopes, u.p.Key)
	a, err := s.d.Stat(ctx, ns, key)
	exists := err == nil
	if err != nil && !errors.Is(err, driver.ErrNotFound) {
		return s.assembleFailed(ctx, err)
	}
	if exists && a.Expired(s.now().UTC()) {
		if err := s.dropExpired(ctx, ns, key); err != nil {
			return s.assembleFailed(ctx, err)
		}
		exists = false
	}
	// Over an object, the parts are copied to a spool first, as a
	// replacing PUT's body is, so that a part that cannot be read leaves
	// the old object in place (and the upload, to complete again); and so
	// are the parts of a zstd object, counted there as a PUT's zstd body
	// is, for the decoded size its attributes record.
	var in io.Reader = body
	if count := m.encoding == driver.EncodingZstd && m.decodedSize < 0; exists || count {
		f, n, decoded, cleanup, err := s.spoolTo(body, count)
		if err != nil {
			return s.completeFailed(ctx, err)
		}
		defer cleanup()
		if n != total {
			return s.assembleFailed(ctx, fmt.Errorf("service: the parts gave %d bytes, not the %d listed", n, total))
		}
		if count {
			m.decodedSize = decoded
		}
		in = f
	}
	if err := s.store(ctx, u.p, m, in, total, exists); err != nil && !errors.Is(err, driver.ErrExists) {
		return s.completeFailed(ctx, err)
	}
	// The object is stored: the upload is done.
	if err := s.d.Delete(context.WithoutCancel(ctx), u.ns(), u.record()); err != nil && !errors.Is(err, driver.ErrNotFound) {
		s.log.Warn("service: removing a completed multipart upload; it expires", "err", err)
	}
	s.dropParts(ctx, u, max(lastPart(rec), nums[len(nums)-1]))
	return map[string]string{"key": u.p.Key}
}

// completeFailed is the answer to a complete whose object could not be
// stored: the part's own error, or an internal one.
func (s *Server) completeFailed(ctx context.Context, err error) any {
	var ce *completeError
	if errors.As(err, &ce) {
		return map[string]any{"error": ce}
	}
	return s.assembleFailed(ctx, err)
}

func (s *Server) assembleFailed(ctx context.Context, err error) any {
	if ctx.Err() != nil {
		// The client went away: nothing is stored, the upload stays.
		s.log.Info("service: a multipart complete ended with its request; the upload stays", "err", err)
	} else {
		s.log.Error("service: completing a multipart upload", "err", err)
	}
	return map[string]any{"error": &completeError{"InternalError", "the object could not be stored (the server's log has the cause)"}}
}

// partsReader reads the parts of an upload one after another, each checked
// again against the etag and size it was listed with: a part put again
// meanwhile fails the complete rather than change the object.
type partsReader struct {
	ctx  context.Context
	s    *Server
	u    upload
	nums []int
	as   []*driver.Attributes
	i    int
	cur  io.ReadCloser
	left int64
}

func (p *partsReader) Read(b []byte) (int, error) {
	for {
		if p.cur == nil {
			if p.i == len(p.nums) {
				return 0, io.EOF
			}
			rc, a, err := p.s.d.Get(p.ctx, p.u.ns(), p.u.part(p.nums[p.i]))
			if err == nil && (a.Metadata[mpETag] != p.as[p.i].Metadata[mpETag] || a.StoredSize != p.as[p.i].StoredSize) {
				rc.Close()
				err = &completeError{"InvalidPart", fmt.Sprintf("part %d was put again while the upload completed", p.nums[p.i])}
			}
			if err != nil {
				if errors.Is(err, driver.ErrNotFound) {
					err = &completeError{"InvalidPart", fmt.Sprintf("part %d is gone", p.nums[p.i])}
				}
				return 0, err
			}
			p.cur, p.left = rc, a.StoredSize
		}
		if p.left == 0 {
			p.close()
			p.i++
			continue
		}
		if int64(len(b)) > p.left {
			b = b[:p.left]
		}
		n, err := p.cur.Read(b)
		p.left -= int64(n)
		if err == io.EOF {
			if p.left > 0 {
				return n, fmt.Errorf("part %d: %w", p.nums[p.i], io.ErrUnexpectedEOF)
			}
			err = nil
		}
		if n > 0 || err != nil {
			return n, err
		}
	}
}

func (p *partsReader) close() {
	if p.cur != nil {
		p.cur.Close()
		p.cur = nil
	}
}
