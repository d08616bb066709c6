package objectstash

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"net/http"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash/driver"
)

// extendSlack is how much later than the recorded expiry the service may
// report a deadline without that being an extension: the time-to-live is
// sent in whole seconds, rounded up, and objectstore rounds its
// timestamps up to whole seconds too.
const extendSlack = 2 * time.Second

// UpdateAttributes implements driver.Updater with objectstore's expiry
// extension, PATCH /v1/objects/{usecase}/{scopes}/{key} with
// {"extend_expiry": {"at": <deadline>}}: the deadline is attrs' expiry
// (the last access plus the time-to-idle, else the time-to-live's end). Like
// objectstore's, the extension never shortens a deadline and keeps a
// time-to-idle's duration; it is what the engine asks for (a repeated
// create extends, a read records its access). The exact attributes go
// along as x-snme-claimstash, which claimstash's server stores and
// objectstore's ignores: there, Stat and Get report the deadline the
// service keeps instead. attrs without an expiry change nothing.
//
// A missing or expired object is driver.ErrNotFound. A service that
// cannot extend is driver.ErrUnsupported, which the engine reports and
// carries on without: one without the extension (405 or 501: an
// objectstore release before it, or a claimstash server over a store that
// cannot update metadata), or one that refuses it for this object (409:
// it never expires or changed meanwhile; 400: past the usecase's longest
// expiry) or this token (403: one that may only read; the service records
// reads for time-to-idle itself).
func (s *Store) UpdateAttributes(ctx context.Context, ns, key string, attrs *driver.Attributes) error {
	o, err := parseKey(ns, key)
	if err != nil {
		return err
	}
	at := deadline(attrs)
	if at.IsZero() {
		return nil
	}
	body, err := json.Marshal(map[string]map[string]string{"extend_expiry": {"at": at.UTC().Format(time.RFC3339Nano)}})
	if err != nil {
		return fmt.Errorf("objectstash: %w", err)
	}
	blob, err := json.Marshal(attrs)
	if err != nil {
		return fmt.Errorf("objectstash: encoding attributes: %w", err)
	}
	req, err := s.request(ctx, http.MethodPatch, o, osauth.Write, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("x-snme-"+metaAttrs, base64.RawURLEncoding.EncodeToString(blob))
	resp, err := s.do(req)
	if err != nil {
		return err
	}
	defer release(resp)
	switch resp.StatusCode {
	case http.StatusNoContent, http.StatusOK:
		return nil
	case http.StatusMethodNotAllowed, http.StatusNotImplemented, http.StatusConflict, http.StatusBadRequest, http.StatusForbidden:
		// No extension here: none at all (405, 501), none for this
		// object (409: it never expires, or changed meanwhile), none
		// this long (400: past the usecase's longest expiry), or none
		// for this token (403: a reader's, whose reads the service
		// records itself).
		return fmt.Errorf("%w: %w", driver.ErrUnsupported, statusError(resp))
	}
	return statusError(resp)
}

// deadline is the service's deadline for attrs, as Put declared the
// expiry (see expiration): the last access plus the time-to-idle, else the
// time-to-live's end, else zero for never.
func deadline(a *driver.Attributes) time.Time {
	if a.TTI > 0 {
		last := a.LastAccess
		if last.IsZero() {
			last = a.Created
		}
		return last.Add(a.TTI)
	}
	return a.ExpiresAt
}
