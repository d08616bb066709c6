package service_test

import (
	"strings"
	"testing"

	"github.com/claimstash/claimstash/osauth"
)

// TestBatchPermissionsPerOperation: a batch mixing every kind of operation,
// under a token holding one permission, does exactly the operations that
// permission allows and refuses the others with 403 before touching the
// object: a read-only token inserts and deletes nothing, a write-only one
// reads nothing, a delete-only one deletes and nothing else.
func TestBatchPermissionsPerOperation(t *testing.T) {
	f := openAuth(t)
	all := f.token(t, scopes, []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete})
	base := f.ts.URL + "/v1/objects/testing/org=42;project=7/"
	u := f.ts.URL + "/v1/objects:batch/testing/org=42;project=7/"
	want := map[osauth.Permission]map[string]string{
		osauth.Read:   {"get": "200", "head": "204", "insert": "403", "delete": "403"},
		osauth.Write:  {"get": "403", "head": "403", "insert": "201", "delete": "403"},
		osauth.Delete: {"get": "403", "head": "403", "insert": "403", "delete": "204"},
	}
	for perm, kinds := range want {
		// "old" exists and may be read or deleted; "new" may be inserted.
		old, neu := "old-"+string(perm), "new-"+string(perm)
		wantStatus(t, do(t, "PUT", base+old, strings.NewReader("kept"), "x-os-auth", "Bearer "+all), 200)
		ops := []op{{kind: "get", key: old}, {kind: "head", key: old}, {kind: "insert", key: neu, body: []byte("new")}, {kind: "delete", key: old}}
		r, res := batch(t, u, ops, "x-os-auth", "Bearer "+f.token(t, scopes, []osauth.Permission{perm}))
		if r.StatusCode != 200 || len(res) != len(ops) {
			t.Fatalf("%s token: status %d, %d results, want 200 and %d", perm, r.StatusCode, len(res), len(ops))
		}
		for i, o := range ops {
			if got := res[i].status; got != kinds[o.kind] {
				t.Errorf("%s token, %s: status %s, want %s", perm, o.kind, got, kinds[o.kind])
			}
		}
		// What is stored says the same, read with a token that may read.
		oldStatus, newStatus := 200, 404
		if perm == osauth.Delete {
			oldStatus = 404
		}
		if perm == osauth.Write {
			newStatus = 200
		}
		for key, code := range map[string]int{old: oldStatus, neu: newStatus} {
			if r := do(t, "GET", base+key, nil, "x-os-auth", "Bearer "+all); r.StatusCode != code {
				t.Errorf("%s token: %s afterwards: status %d, want %d", perm, key, r.StatusCode, code)
			}
		}
	}
}

// TestObjectPermissionsPerMethod: each single-permission token against each
// method, and what is stored afterwards: HEAD and GET need read (a
// write-only token learns nothing, not even whether the object exists),
// PUT and PATCH need write, DELETE needs delete (and only it removes the
// object).
func TestObjectPermissionsPerMethod(t *testing.T) {
	f := openAuth(t)
	all := f.token(t, scopes, []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete})
	base := f.ts.URL + "/v1/objects/testing/org=42;project=7/"
	wantStatus(t, do(t, "PUT", base+"k", strings.NewReader("kept"), "x-os-auth", "Bearer "+all, "x-sn-expiration", "ttl:1h"), 200)
	extend := `{"extend_expiry":{"after":"2h","from":"now"}}`
	for _, perm := range []osauth.Permission{osauth.Read, osauth.Write, osauth.Delete} {
		tok := f.token(t, scopes, []osauth.Permission{perm})
		for _, m := range []struct {
			method, key, body string
			needs             osauth.Permission
			ok                int
			hdr               []string
		}{
			{"GET", "k", "", osauth.Read, 200, nil},
			{"HEAD", "k", "", osauth.Read, 204, nil},
			{"GET", "absent", "", osauth.Read, 404, nil},
			{"HEAD", "absent", "", osauth.Read, 404, nil},
			{"PATCH", "k", extend, osauth.Write, 204, []string{"Content-Type", "application/json"}},
			{"PUT", "k", "kept", osauth.Write, 200, []string{"x-sn-expiration", "ttl:1h"}},
			{"DELETE", "k", "", osauth.Delete, 204, nil},
		} {
			code := 403
			if perm == m.needs {
				code = m.ok
			}
			r := do(t, m.method, base+m.key, strings.NewReader(m.body), append([]string{"x-os-auth", "Bearer " + tok}, m.hdr...)...)
			if r.StatusCode != code {
				t.Errorf("%s token: %s %s: status %d, want %d", perm, m.method, m.key, r.StatusCode, code)
			}
		}
		// Only the delete-only token (the last) removed the object.
		code := 200
		if perm == osauth.Delete {
			code = 404
		}
		if r := do(t, "GET", base+"k", nil, "x-os-auth", "Bearer "+all); r.StatusCode != code {
			t.Errorf("after the %s token: GET k: status %d, want %d", perm, r.StatusCode, code)
		}
	}
}
