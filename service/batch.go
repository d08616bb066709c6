package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/google/uuid"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash/driver"
)

// Batch part headers.
const (
	HeaderBatchKind   = "x-sn-batch-operation-kind"
	HeaderBatchKey    = "x-sn-batch-operation-key"
	HeaderBatchIndex  = "x-sn-batch-operation-index"
	HeaderBatchStatus = "x-sn-batch-operation-status"
)

// Batch operation kinds.
const (
	BatchGet    = "get"
	BatchHead   = "head"
	BatchInsert = "insert"
	BatchDelete = "delete"
)

// batch serves POST /v1/objects:batch/{usecase}/{scopes}/: a
// multipart/form-data body whose parts are operations, each naming its kind
// and (percent-encoded) key in part headers; an insert's part body is the
// object, with its metadata in the part's headers. The answer is
// multipart/form-data in objectstore's form (see the package doc), one part
// per operation in order. Operations run in order as they arrive; at most
// MaxBatchOperations, and an insert of at most MaxBatchInsert bytes (413
// for that operation).
func (s *Server) batch(w http.ResponseWriter, r *http.Request, rest string) {
	if r.Method != http.MethodPost {
		w.Header().Set("Allow", "POST")
		s.fail(w, r, status(http.StatusMethodNotAllowed, "batch requests are POST"))
		return
	}
	p, err := parseObjectPath(rest, s.maxScope)
	if err != nil {
		s.fail(w, r, &apiError{http.StatusBadRequest, err})
		return
	}
	if p.Key != "" {
		s.fail(w, r, status(http.StatusBadRequest, "a batch path ends with the scopes and a slash"))
		return
	}
	if err := s.authenticated(r, p); err != nil {
		s.fail(w, r, err)
		return
	}
	mt, params, err := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if err != nil || !strings.HasPrefix(mt, "multipart/") || params["boundary"] == "" {
		s.fail(w, r, status(http.StatusBadRequest, "a batch body is multipart/form-data"))
		return
	}
	// Answers stream out while operations are still coming in.
	_ = http.NewResponseController(w).EnableFullDuplex()
	r.Body = http.MaxBytesReader(w, r.Body, s.maxBody)
	mr := multipart.NewReader(r.Body, params["boundary"])
	mw := multipart.NewWriter(w)
	h := w.Header()
	h[HeaderContentType] = []string{`multipart/form-data; boundary="` + mw.Boundary() + `"`}
	h["Content-Type"] = nil
	w.WriteHeader(http.StatusOK)
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.batchError(mw, i, readError(fmt.Sprintf("reading operation %d", i), err))
			break
		}
		if i >= MaxBatchOperations {
			// As objectstore does: every operation past the limit is
			// answered, each with its own error.
			s.batchError(mw, i, status(http.StatusRequestEntityTooLarge, "exceeded %d operations per batch request", MaxBatchOperations))
			part.Close()
			continue
		}
		s.batchOp(r, mw, p, i, part)
		part.Close()
	}
	_ = mw.Close()
}

// authenticated fails when the request's token (or its absence) would fail
// every operation alike: missing, malformed, expired. A token that is valid
// but does not allow some operation is judged per operation.
func (s *Server) authenticated(r *http.Request, p ObjectPath) error {
	if s.noAuth {
		return nil
	}
	var first error
	for _, perm := range []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete} {
		err := s.authorize(r, p, perm)
		if err == nil || errors.Is(err, osauth.ErrForbidden) {
			return nil
		}
		if first == nil {
			first = err
		}
	}
	return first
}

func (s *Server) batchOp(r *http.Request, mw *multipart.Writer, scope ObjectPath, i int, part *multipart.Part) {
	kind := strings.ToLower(strings.TrimSpace(part.Header.Get(HeaderBatchKind)))
	if kind == "" {
		s.batchError(mw, i, status(http.StatusBadRequest, "missing %s header", HeaderBatchKind))
		return
	}
	rawKey, hasKey := part.Header.Get(HeaderBatchKey), len(part.Header.Values(HeaderBatchKey)) > 0
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		s.batchError(mw, i, status(http.StatusBadRequest, "operation key %q: %v", clip(rawKey), err))
		return
	}
	var perm osauth.Permission
	switch kind {
	case BatchGet, BatchHead:
		perm = osauth.Read
	case BatchInsert:
		perm = osauth.Write
		if !hasKey {
			key = uuid.NewString()
		}
	case BatchDelete:
		perm = osauth.Delete
	default:
		s.batchError(mw, i, status(http.StatusBadRequest, "invalid operation kind %q: want get, head, insert or delete", clip(kind)))
		return
	}
	if !hasKey && kind != BatchInsert {
		s.batchError(mw, i, status(http.StatusBadRequest, "missing %s header for %s operation", HeaderBatchKey, kind))
		return
	}
	if err := ValidKey(key); err != nil {
		s.batchError(mw, i, &apiError{http.StatusBadRequest, err})
		return
	}
	p := ObjectPath{Usecase: scope.Usecase, Scopes: scope.Scopes, Key: key}
	if err := s.authorize(r, p, perm); err != nil {
		s.batchError(mw, i, err)
		return
	}
	ctx := r.Context()
	switch kind {
	case BatchInsert:
		if err = s.batchInsert(ctx, p, part); err == nil {
			s.batchResult(mw, i, kind, key, http.StatusCreated, nil, nil)
		}
	case BatchDelete:
		if err = s.delete(ctx, p); err == nil {
			s.batchResult(mw, i, kind, key, http.StatusNoContent, nil, nil)
		}
	case BatchHead:
		ns, k := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
		var a *driver.Attributes
		if a, err = s.d.Stat(ctx, ns, k); err == nil {
			var exp time.Time
			if exp, err = s.live(ctx, ns, k, a); err == nil {
				s.batchResult(mw, i, kind, key, http.StatusNoContent, metaHeader(a, exp), nil)
			}
		}
	case BatchGet:
		err = s.batchGet(ctx, mw, i, p)
	}
	switch {
	case err == nil:
	case (kind == BatchGet || kind == BatchHead) && statusOf(err) == http.StatusNotFound:
		// A missing object is an answer, not an error: objectstore
		// sends it as a plain 404 part of the operation's kind and key.
		s.batchResult(mw, i, kind, key, http.StatusNotFound, nil, nil)
	default:
		s.batchError(mw, i, err)
	}
}

func (s *Server) batchInsert(ctx context.Context, p ObjectPath, part *multipart.Part) error {
	m, err := parseMeta(http.Header(part.Header))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(part, MaxBatchInsert+1))
	if err != nil {
		return readError("reading the object", err)
	}
	if len(body) > MaxBatchInsert {
		return status(http.StatusRequestEntityTooLarge, "individual request in batch exceeds body size limit of %d bytes", MaxBatchInsert)
	}
	if m.encoding == driver.EncodingZstd && m.decodedSize < 0 {
		m.decodedSize = countDecoded(bytes.NewReader(body)) // as put does
	}
	err = s.store(ctx, p, m, bytes.NewReader(body), int64(len(body)), true)
	if errors.Is(err, driver.ErrExists) {
		return nil // a concurrent PUT of the same key won
	}
	return err
}

func (s *Server) batchGet(ctx context.Context, mw *multipart.Writer, i int, p ObjectPath) error {
	ns, k := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	rc, a, err := s.d.Get(ctx, ns, k)
	if err != nil {
		return err
	}
	defer rc.Close()
	exp, err := s.live(ctx, ns, k, a)
	if err != nil {
		return err
	}
	s.batchResult(mw, i, BatchGet, p.Key, http.StatusOK, metaHeader(a, exp), rc)
	return nil
}

// readError is a failure to read a batch body: 413 past the server's body
// limit (WithMaxBodySize), 400 otherwise (cut short, malformed).
func readError(what string, err error) error {
	var tooBig *http.MaxBytesError
	if errors.As(err, &tooBig) {
		return status(http.StatusRequestEntityTooLarge, "%s: the batch is over %d bytes", what, tooBig.Limit)
	}
	return status(http.StatusBadRequest, "%s: %v", what, err)
}

func metaHeader(a *driver.Attributes, exp time.Time) textproto.MIMEHeader {
	h := http.Header{}
	setMeta(h, a, exp, false)
	delete(h, "Content-Type")
	return textproto.MIMEHeader(h)
}

// batchStatus is a part's status as objectstore writes it: the code and
// its reason phrase, "200 OK".
func batchStatus(code int) string {
	return strings.TrimSpace(strconv.Itoa(code) + " " + http.StatusText(code))
}

// encodeBatchKey percent-encodes every byte but ASCII letters and digits,
// as objectstore encodes the key of a response part.
func encodeBatchKey(k string) string {
	var b strings.Builder
	for i := 0; i < len(k); i++ {
		c := k[i]
		if c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' {
			b.WriteByte(c)
			continue
		}
		fmt.Fprintf(&b, "%%%02X", c)
	}
	return b.String()
}

// batchPart writes one response part: form-data named "part", as
// objectstore's are, with the operation's index and status.
func (s *Server) batchPart(mw *multipart.Writer, i, code int, h textproto.MIMEHeader, body io.Reader) {
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	h["content-disposition"] = []string{`form-data; name="part"`}
	h[HeaderBatchIndex] = []string{strconv.Itoa(i)}
	h[HeaderBatchStatus] = []string{batchStatus(code)}
	pw, err := mw.CreatePart(h)
	if err != nil {
		return // the client is gone
	}
	if body != nil {
		if _, err := io.Copy(pw, body); err != nil {
			s.log.Warn("service: batch response cut short", "index", i, "err", err)
		}
	}
}

// batchResult answers an operation that ran: its kind and key beside the
// index and status, the object's metadata headers and, for a get, the
// object.
func (s *Server) batchResult(mw *multipart.Writer, i int, kind, key string, code int, h textproto.MIMEHeader, body io.Reader) {
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	h[HeaderBatchKind] = []string{kind}
	h[HeaderBatchKey] = []string{encodeBatchKey(key)}
	s.batchPart(mw, i, code, h, body)
}

// batchError answers an operation that failed: the index, the status and
// objectstore's JSON error as the body, nothing else (the operation may
// not even have had a kind or key).
func (s *Server) batchError(mw *multipart.Writer, i int, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.log.Error("service: batch operation failed", "index", i, "err", err)
		err = internalError(code)
	}
	b, _ := json.Marshal(errorJSON(err))
	s.batchPart(mw, i, code, nil, bytes.NewReader(b))
}
