package main

import (
	"encoding/json"
	"fmt"
	"io"
	"sort"
	"time"

	"github.com/claimstash/claimstash/stash"
	"github.com/spf13/cobra"
)

type cobraCommand = cobra.Command

// topic is a help topic: "claimstash help NAME" prints it.
func topic(name, short, text string) *cobra.Command {
	return &cobra.Command{Use: name, Short: short, Long: text}
}

const jsonHelp = `With --json every command prints one JSON document on stdout (ls, and
inspect of several messages: one per line), and a failure prints one on stderr
instead, with the same exit status:

  {"error": {"command": "get", "message": "...", "kind": "not_found", "exit": 3}}

kind is one of usage, invalid_input, not_found, expired, integrity,
missing_destination, refused, interrupted, failure.

A stash (put, stat, each line of ls) is:

  {"address": "file://default/report.pdf.3f0a...", "scheme": "file",
   "namespace": "default", "name": "report.pdf", "digest": "3f0a...",
   "size": 1048576, "stored_size": 400123, "encoding": "zstd",
   "content_type": "application/pdf", "metadata": {"team": "ops"},
   "origin": "billing", "created": "2026-01-02T03:04:05Z",
   "expires_at": "2026-01-03T03:04:05Z", "tti": "1h0m0s",
   "last_access": "2026-01-02T03:04:05Z"}

expires_at is when the stash expires if it is not read again (the earlier of
its time-to-live and its last access plus time-to-idle); fields without a
value are left out. The other commands print:

  get -o FILE   {"stash": <stash>, "output": "FILE"}
  rm            {"deleted": [ADDRESS...], "missing": [ADDRESS...], "inline": [ADDRESS...]}
  sweep         {"swept": 3}
  share         {"url": "https://...", "address": "...", "expires_at": "..."}
  serve         {"listen": "127.0.0.1:8080", "url": "http://127.0.0.1:8080/",
                 "api": "http://127.0.0.1:8080/v1/objects/", "backend": "file",
                 "auth": true, "share_links": true,
                 "metrics": "http://127.0.0.1:8080/metrics"} (with --no-api: no api,
                backend or auth; no metrics with --no-metrics), then its access
                log as JSON lines on stderr
  inspect       {"claim_checked": true, "contract_version": "1", "size": 1048576,
                 "address": "...", "headers": {...}, "verified": true, "stash": <stash>,
                 "error": "..." (when the check failed)}
  keygen        {"kind": "link", "id": "k1", "secret": "base64...", "key": "k1:base64..."}
                or {"kind": "objectstore", "id": "relay", "private_key": "/keys/relay.key",
                 "public_key": "/keys/relay.pub", "permissions_file": "/keys/relay.permissions",
                 "max_permissions": ["object.read"]} (the last two with --max-permissions)
  token         {"token": "eyJ...", "kid": "relay", "usecase": "attachments",
                 "scopes": "org=42;project=*", "permissions": ["object.read"],
                 "expires_at": "2026-01-02T04:04:05Z"}

get without -o writes the payload to stdout and so takes no --json.
`

func jsonTopic() *cobra.Command {
	return topic("json", "The shape of each command's --json output", jsonHelp)
}

// stashJSON is the JSON form of a stash; "claimstash help json" documents it.
type stashJSON struct {
	Address     string            `json:"address"`
	Scheme      string            `json:"scheme"`
	Namespace   string            `json:"namespace"`
	Name        string            `json:"name"`
	Digest      string            `json:"digest,omitempty"`
	Size        int64             `json:"size"`
	StoredSize  int64             `json:"stored_size"`
	Encoding    string            `json:"encoding,omitempty"`
	ContentType string            `json:"content_type,omitempty"`
	Metadata    map[string]string `json:"metadata,omitempty"`
	Origin      string            `json:"origin,omitempty"`
	Created     time.Time         `json:"created,omitzero"`
	ExpiresAt   time.Time         `json:"expires_at,omitzero"`
	TTI         string            `json:"tti,omitempty"`
	LastAccess  time.Time         `json:"last_access,omitzero"`
}

func toJSON(s *stash.Stash) stashJSON {
	j := stashJSON{
		Address: s.String(), Scheme: s.Address.Scheme, Namespace: s.Namespace(), Name: s.Name(),
		Digest: s.Address.Digest, Size: s.Size, StoredSize: s.StoredSize, Encoding: string(s.Encoding),
		ContentType: s.ContentType, Metadata: s.Metadata, Origin: s.Origin, Created: s.Created,
		ExpiresAt: s.Expiry(), LastAccess: s.LastAccess,
	}
	if s.TTI > 0 {
		j.TTI = s.TTI.String()
	}
	return j
}

// printJSON writes v as one indented JSON document on stdout.
func (a *app) printJSON(v any) error {
	enc := json.NewEncoder(a.stdout)
	enc.SetIndent("", "  ")
	return enc.Encode(v)
}

// printStash writes a stash's attributes, one per line.
func (a *app) printStash(s *stash.Stash) {
	j := toJSON(s)
	a.printf("address:      %s\n", j.Address)
	a.printf("namespace:    %s\n", j.Namespace)
	a.printf("name:         %s\n", j.Name)
	if j.Digest != "" {
		a.printf("digest:       %s\n", j.Digest)
	}
	a.printf("size:         %d (%s)\n", j.Size, human(j.Size))
	a.printf("stored size:  %d (%s)\n", j.StoredSize, human(j.StoredSize))
	enc := j.Encoding
	if enc == "" {
		enc = "identity"
	}
	a.printf("encoding:     %s\n", enc)
	if j.ContentType != "" {
		a.printf("content type: %s\n", shown(j.ContentType, maxShownValue))
	}
	if j.Origin != "" {
		a.printf("origin:       %s\n", shown(j.Origin, maxShownValue))
	}
	if !j.Created.IsZero() {
		a.printf("created:      %s\n", j.Created.Format(time.RFC3339))
	}
	if !j.ExpiresAt.IsZero() {
		a.printf("expires:      %s\n", j.ExpiresAt.Format(time.RFC3339))
	}
	keys := make([]string, 0, len(j.Metadata))
	for k := range j.Metadata {
		keys = append(keys, k)
	}
	sort.Strings(keys)
	for _, k := range keys {
		// Whoever wrote the stash chose these: escaped, they can
		// neither drive the terminal nor forge a line of their own.
		a.printf("metadata:     %s=%s\n", shown(k, maxShownValue), shown(j.Metadata[k], maxShownValue))
	}
}

// human formats a byte count.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}

// jsonLine writes v as one JSON line (ls, inspect).
func jsonLine(w io.Writer, v any) error {
	return json.NewEncoder(w).Encode(v)
}
