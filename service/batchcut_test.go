package service_test

import (
	"bytes"
	"io"
	"mime"
	"mime/multipart"
	"net/http"
	"net/textproto"
	"testing"

	"github.com/claimstash/claimstash/service"
)

// TestBatchCutShort: a batch body that ends inside an insert's part (the
// client went away, a proxy cut it) fails that operation, stores nothing
// under its key, and ends the answer with a request error; the operations
// that arrived whole before it ran.
func TestBatchCutShort(t *testing.T) {
	ts, _ := open(t)
	var buf bytes.Buffer
	mw := multipart.NewWriter(&buf)
	for _, o := range []struct{ key, body string }{{"whole", "arrived whole"}, {"cut", "this part never ends"}} {
		pw, err := mw.CreatePart(textproto.MIMEHeader{"x-sn-batch-operation-kind": {"insert"}, "x-sn-batch-operation-key": {o.key}})
		if err != nil {
			t.Fatal(err)
		}
		io.WriteString(pw, o.body)
	}
	mw.Close()
	body := buf.Bytes()
	body = body[:bytes.Index(body, []byte("never ends"))]
	r := do(t, "POST", ts.URL+"/v1/objects:batch/testing/_/", bytes.NewReader(body), "Content-Type", mw.FormDataContentType())
	wantStatus(t, r, 200)
	_, params, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	mr := multipart.NewReader(r.Body, params["boundary"])
	var statuses []string
	for {
		p, err := mr.NextPart()
		if err == io.EOF {
			break
		}
		if err != nil {
			t.Fatal(err)
		}
		statuses = append(statuses, p.Header.Get("x-sn-batch-operation-index")+" "+p.Header.Get("x-sn-batch-operation-status"))
	}
	if len(statuses) < 2 || statuses[0] != "0 201 Created" || statuses[1] != "1 400 Bad Request" {
		t.Fatalf("answers %q: want the whole insert created, the cut one 400", statuses)
	}
	if got := readAll(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/whole", nil)); got != "arrived whole" {
		t.Fatalf("whole: %q", got)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/cut", nil), http.StatusNotFound)
	t.Log(statuses)
}

// TestBatchOverBodyLimit: a batch body past the server's body limit fails
// the operation it is cut in with 413, as a PUT over it is, not 400.
func TestBatchOverBodyLimit(t *testing.T) {
	ts, _ := open(t, service.WithMaxBodySize(1000))
	_, res := batch(t, ts.URL+"/v1/objects:batch/testing/_/", []op{
		{kind: "insert", key: "small", body: []byte("fits")},
		{kind: "insert", key: "big", body: bytes.Repeat([]byte("x"), 2000)},
	})
	if len(res) < 2 || res[0].status != "201" || res[1].status != "413" {
		t.Fatalf("answers %+v: want 201, then 413", res)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/big", nil), http.StatusNotFound)
}

// TestBatchHostileParts: a key that is not valid percent-encoding is a 400
// for its operation alone; the same key inserted twice in one batch holds
// the later insert, as two PUTs in a row would.
func TestBatchHostileParts(t *testing.T) {
	ts, _ := open(t)
	_, res := batch(t, ts.URL+"/v1/objects:batch/testing/_/", []op{
		{kind: "get", key: "bad%zz"},
		{kind: "insert", key: "bad%"},
		{kind: "insert", key: "dup", body: []byte("first")},
		{kind: "insert", key: "dup", body: []byte("second")},
		{kind: "get", key: "dup"},
	})
	want := []string{"400", "400", "201", "201", "200"}
	if len(res) != len(want) {
		t.Fatalf("answers %+v", res)
	}
	for i, w := range want {
		if res[i].status != w {
			t.Errorf("op %d: %s, want %s (%s)", i, res[i].status, w, res[i].body)
		}
	}
	if res[4].body != "second" {
		t.Errorf("get after two inserts of one key: %q, want the later", res[4].body)
	}
	wantStatus(t, do(t, "GET", ts.URL+"/v1/objects/testing/_/bad%25", nil), http.StatusNotFound)
}
