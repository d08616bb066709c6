package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
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
// multipart/mixed, one part per operation in order, each with the
// operation's index, status and key, the metadata of get and head, and the
// object of a get or the JSON error of a failed operation. Operations run in
// order as they arrive; at most MaxBatchOperations, and an insert of at most
// MaxBatchInsert bytes (413 for that operation).
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
	h[HeaderContentType] = []string{"multipart/mixed; boundary=" + mw.Boundary()}
	h["Content-Type"] = nil
	w.WriteHeader(http.StatusOK)
	for i := 0; ; i++ {
		part, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			s.batchError(mw, i, "", status(http.StatusBadRequest, "reading operation %d: %v", i, err))
			break
		}
		if i >= MaxBatchOperations {
			s.batchError(mw, i, "", status(http.StatusRequestEntityTooLarge, "more than %d operations", MaxBatchOperations))
			part.Close()
			break
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
	if s.auth == nil {
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
	rawKey := part.Header.Get(HeaderBatchKey)
	key, err := url.PathUnescape(rawKey)
	if err != nil {
		s.batchError(mw, i, rawKey, status(http.StatusBadRequest, "operation key %q: %v", clip(rawKey), err))
		return
	}
	var perm osauth.Permission
	switch kind {
	case BatchGet, BatchHead:
		perm = osauth.Read
	case BatchInsert:
		perm = osauth.Write
		if key == "" {
			key = uuid.NewString()
		}
	case BatchDelete:
		perm = osauth.Delete
	default:
		s.batchError(mw, i, key, status(http.StatusBadRequest, "operation kind %q: want get, head, insert or delete", clip(kind)))
		return
	}
	if err := ValidKey(key); err != nil {
		s.batchError(mw, i, key, &apiError{http.StatusBadRequest, err})
		return
	}
	p := ObjectPath{Usecase: scope.Usecase, Scopes: scope.Scopes, Key: key}
	if err := s.authorize(r, p, perm); err != nil {
		s.batchError(mw, i, key, err)
		return
	}
	ctx := r.Context()
	switch kind {
	case BatchInsert:
		err = s.batchInsert(ctx, p, part)
		if err == nil {
			s.batchResult(mw, i, key, http.StatusCreated, nil, strings.NewReader(`{"key":`+strconv.Quote(key)+"}\n"))
		}
	case BatchDelete:
		if err = s.delete(ctx, p); err == nil {
			s.batchResult(mw, i, key, http.StatusNoContent, nil, nil)
		}
	case BatchHead:
		ns, k := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
		var a *driver.Attributes
		if a, err = s.d.Stat(ctx, ns, k); err == nil {
			var exp time.Time
			if exp, err = s.live(ctx, ns, k, a); err == nil {
				s.batchResult(mw, i, key, http.StatusNoContent, metaHeader(a, exp), nil)
			}
		}
	case BatchGet:
		err = s.batchGet(ctx, mw, i, p)
	}
	if err != nil {
		s.batchError(mw, i, key, err)
	}
}

func (s *Server) batchInsert(ctx context.Context, p ObjectPath, part *multipart.Part) error {
	m, err := parseMeta(http.Header(part.Header))
	if err != nil {
		return err
	}
	body, err := io.ReadAll(io.LimitReader(part, MaxBatchInsert+1))
	if err != nil {
		return status(http.StatusBadRequest, "reading the object: %v", err)
	}
	if len(body) > MaxBatchInsert {
		return status(http.StatusRequestEntityTooLarge, "a batch insert holds at most %d bytes", MaxBatchInsert)
	}
	return s.store(ctx, p, m, bytes.NewReader(body), int64(len(body)), true)
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
	s.batchResult(mw, i, p.Key, http.StatusOK, metaHeader(a, exp), rc)
	return nil
}

func metaHeader(a *driver.Attributes, exp time.Time) textproto.MIMEHeader {
	h := http.Header{}
	setMeta(h, a, exp, false)
	delete(h, "Content-Type")
	return textproto.MIMEHeader(h)
}

func (s *Server) batchResult(mw *multipart.Writer, i int, key string, code int, h textproto.MIMEHeader, body io.Reader) {
	if h == nil {
		h = textproto.MIMEHeader{}
	}
	h[HeaderBatchIndex] = []string{strconv.Itoa(i)}
	h[HeaderBatchStatus] = []string{strconv.Itoa(code)}
	if key != "" {
		h[HeaderBatchKey] = []string{url.PathEscape(key)}
	}
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

func (s *Server) batchError(mw *multipart.Writer, i int, key string, err error) {
	code := statusOf(err)
	if code >= 500 {
		s.log.Error("service: batch operation failed", "index", i, "err", err)
		err = internalError(code)
	}
	b, _ := json.Marshal(errorJSON(err))
	s.batchResult(mw, i, key, code, textproto.MIMEHeader{HeaderContentType: {"application/json"}}, bytes.NewReader(append(b, '\n')))
}
