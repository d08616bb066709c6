package service

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"mime"
	"net/http"
	"strings"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
)

// MetaAttributes is the custom metadata key (header x-snme-claimstash)
// under which claimstash's backend keeps a stash's exact attributes. A
// PATCH that carries it replaces the stored value, so that the backend's
// copy follows an extension exactly; objectstore's own servers ignore the
// header on a PATCH, and the backend then reads the deadline the server
// reports.
const MetaAttributes = "claimstash"

// maxPatchBody bounds a PATCH body: one small JSON object.
const maxPatchBody = 16 << 10

// ExpiryExtension is the body of PATCH /v1/objects/{usecase}/{scopes}/{key}:
// {"extend_expiry": {"at": "<RFC 3339>"}} or {"extend_expiry": {"after":
// "<duration>", "from": "now" | "creation"}}, as objectstore's clients
// send it (extend_expiry in the Python client).
type ExpiryExtension struct {
	ExtendExpiry *struct {
		At    *string `json:"at,omitempty"`
		After *string `json:"after,omitempty"`
		From  *string `json:"from,omitempty"`
	} `json:"extend_expiry"`
}

// deadline resolves the extension against the request time and the
// object's creation time.
func (x *ExpiryExtension) deadline(now, created time.Time) (time.Time, error) {
	e := x.ExtendExpiry
	if e == nil {
		return time.Time{}, status(http.StatusUnprocessableEntity, "want {\"extend_expiry\": {\"at\": …} or {\"after\": …, \"from\": \"now\" or \"creation\"}}")
	}
	switch {
	case e.At != nil && e.After == nil && e.From == nil:
		at, err := time.Parse(time.RFC3339Nano, *e.At)
		if err != nil {
			return time.Time{}, status(http.StatusUnprocessableEntity, "extend_expiry.at %q: want an RFC 3339 time", clip(*e.At))
		}
		return at.UTC(), nil
	case e.At == nil && e.After != nil && e.From != nil:
		d, err := ParseDuration(*e.After)
		if err != nil {
			return time.Time{}, &apiError{http.StatusUnprocessableEntity, fmt.Errorf("extend_expiry.after: %w", err)}
		}
		switch *e.From {
		case "now":
			return now.Add(d), nil
		case "creation":
			if created.IsZero() {
				return time.Time{}, status(http.StatusConflict, "the object has no creation time to extend from")
			}
			return created.Add(d), nil
		}
		return time.Time{}, status(http.StatusUnprocessableEntity, "extend_expiry.from %q: want now or creation", clip(*e.From))
	}
	return time.Time{}, status(http.StatusUnprocessableEntity, "extend_expiry: give at, or after and from")
}

// errNoDeadline is objectstore's 409 for an object that never expires.
var errNoDeadline = status(http.StatusConflict, "expiry extension could not be satisfied: the object has no expiry")

// extendTo pushes the deadline of a out to at, never shortening it, as
// objectstore's PATCH does: a time-to-live ends at at (so its duration,
// reported from the creation time, grows with it), and a time-to-idle
// object's idle clock is set so its current deadline is at, its duration
// unchanged. It returns nil when the deadline already covers at.
func extendTo(a *driver.Attributes, at time.Time) *driver.Attributes {
	b := *a
	changed := false
	if !b.ExpiresAt.IsZero() && at.After(b.ExpiresAt) {
		b.ExpiresAt, changed = at, true
	}
	if b.TTI > 0 {
		last := b.LastAccess
		if last.IsZero() {
			last = b.Created
		}
		if want := at.Add(-b.TTI); want.After(last) {
			b.LastAccess, changed = want, true
		}
	}
	if !changed {
		return nil
	}
	return &b
}

// patch serves PATCH /v1/objects/{usecase}/{scopes}/{key}: objectstore's
// expiry extension. 204 when the deadline covers the request (already, or
// now), 404 without a body for a missing or expired object, 409 for one
// that never expires, 415/400/422 for a body that is not the JSON above.
// A request that also carries x-snme-claimstash replaces that metadata
// value (claimstash's backend keeps its exact attributes there). The
// read-modify-write is atomic where the driver is a driver.Modifier.
func (s *Server) patch(w http.ResponseWriter, r *http.Request, p ObjectPath) error {
	if mt, _, err := mime.ParseMediaType(r.Header.Get(HeaderContentType)); err != nil || mt != "application/json" {
		return status(http.StatusUnsupportedMediaType, "an expiry extension is application/json")
	}
	body, err := io.ReadAll(io.LimitReader(r.Body, maxPatchBody+1))
	if err != nil {
		return status(http.StatusBadRequest, "reading body: %v", err)
	}
	if len(body) > maxPatchBody {
		return status(http.StatusRequestEntityTooLarge, "an expiry extension is at most %d bytes", maxPatchBody)
	}
	var x ExpiryExtension
	dec := json.NewDecoder(bytes.NewReader(body))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&x); err != nil {
		var syn *json.SyntaxError
		if errors.As(err, &syn) || errors.Is(err, io.ErrUnexpectedEOF) || errors.Is(err, io.EOF) {
			return status(http.StatusBadRequest, "body is not JSON: %v", err)
		}
		return status(http.StatusUnprocessableEntity, "expiry extension: %v", err)
	}
	blob, hasBlob := "", false
	if vs := r.Header.Values(HeaderMetaPrefix + MetaAttributes); len(vs) > 0 {
		if len(vs) != 1 {
			return status(http.StatusBadRequest, "metadata %s given %d times", MetaAttributes, len(vs))
		}
		blob, hasBlob = vs[0], true
	}
	ns, key := storageNamespace(p.Usecase), storageKey(p.Scopes, p.Key)
	now := s.now().UTC()
	var fail error
	update := func(have *driver.Attributes) *driver.Attributes {
		fail = nil
		if have.Expired(now) {
			fail = notFound
			return nil
		}
		if have.ExpiresAt.IsZero() && have.TTI == 0 {
			fail = errNoDeadline
			return nil
		}
		at, err := x.deadline(now, have.Created)
		if err != nil {
			fail = err
			return nil
		}
		if at.Sub(now) > MaxExpiry {
			fail = status(http.StatusBadRequest, "expiry extension beyond %d years", MaxExpiry/(365*24*time.Hour))
			return nil
		}
		b := extendTo(have, at)
		if hasBlob && (have.Metadata[MetaAttributes] != blob || b != nil) {
			if b == nil {
				c := *have
				b = &c
			}
			m := make(map[string]string, len(have.Metadata)+1)
			for k, v := range have.Metadata {
				m[k] = v
			}
			m[MetaAttributes] = blob
			b.Metadata = m
		}
		return b
	}
	err = s.modify(r.Context(), ns, key, update)
	if err == nil {
		err = fail
	}
	if err != nil {
		return err
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// modify runs a read-modify-write of an object's attributes: atomically
// with driver.Modifier, else a Stat then driver.Updater. fn returns nil to
// write nothing.
func (s *Server) modify(ctx context.Context, ns, key string, fn func(*driver.Attributes) *driver.Attributes) error {
	if m, ok := s.d.(driver.Modifier); ok {
		_, err := m.ModifyAttributes(ctx, ns, key, fn)
		return err
	}
	u, ok := s.d.(driver.Updater)
	if !ok {
		return fmt.Errorf("%w: service: this store cannot change an object's metadata", driver.ErrUnsupported)
	}
	a, err := s.d.Stat(ctx, ns, key)
	if err != nil {
		return err
	}
	if b := fn(a); b != nil {
		return u.UpdateAttributes(ctx, ns, key, b)
	}
	return nil
}

// allowedMethods is the Allow header of an object path.
var allowedMethods = strings.Join([]string{http.MethodGet, http.MethodHead, http.MethodPut, http.MethodPost, http.MethodPatch, http.MethodDelete}, ", ")
