package main

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"sort"
	"strconv"
	"strings"

	"github.com/claimstash/claimstash/claimcheck"
	"github.com/claimstash/claimstash/stash"
	"github.com/spf13/cobra"
)

// inspectJSON is inspect's --json output, one per message.
type inspectJSON struct {
	ClaimChecked    bool              `json:"claim_checked"`
	ContractVersion string            `json:"contract_version,omitempty"`
	Size            int64             `json:"size,omitempty"`
	Address         string            `json:"address,omitempty"`
	Headers         map[string]string `json:"headers"`
	Verified        bool              `json:"verified"`
	Stash           *stashJSON        `json:"stash,omitempty"`
	Error           string            `json:"error,omitempty"`
}

// message is one raw message: headers and body.
type message struct {
	headers map[string]string
	body    []byte
}

// maxMessage bounds what inspect reads of one message: the body of a
// claim-checked message is an address, and a raw message is never large.
const maxMessage = 16 << 20

func (a *app) inspectCmd() *cobra.Command {
	var headersFile, bodyFile string
	var noFetch bool
	cmd := &cobra.Command{
		Use:     "inspect [MESSAGE.json|-]",
		GroupID: "messages",
		Short:   "Check a raw claim-checked message and the stash it points to",
		Long: `Read a raw message as a consumer would receive it, show its claim-check
contract (the claimstash-version and claimstash-size headers and the address
in the body), then read the stash and check it against both the size header
and the digest in the address.

The message is JSON as "kcat -J" prints it, one per line: "headers" as an
array of alternating names and values (or an object), "payload" the body.
Or give the headers and the body in two files with --headers and --body; a
headers file is JSON (an object, or kcat's array) or "name: value" lines.

A message that is not claim-checked is shown and passes (exit 0). A stash
that is gone exits 3, one whose bytes or size do not match exits 4, a message
that breaks the contract exits 2.`,
		Example: `  kcat -b localhost:9092 -t orders -C -c 1 -J | claimstash inspect
  claimstash inspect --headers headers.txt --body body.txt`,
		Args: rangeArgs(0, 1, "at most one MESSAGE file"),
		RunE: func(cmd *cobra.Command, args []string) error {
			var msgs []message
			var err error
			switch {
			case headersFile != "" || bodyFile != "":
				if len(args) > 0 || headersFile == "" || bodyFile == "" {
					return usagef("--headers and --body go together, without a MESSAGE file")
				}
				m, err := readParts(headersFile, bodyFile)
				if err != nil {
					return err
				}
				msgs = []message{m}
			default:
				in := a.stdin
				if len(args) == 1 && args[0] != "-" {
					f, err := os.Open(args[0])
					if err != nil {
						return err
					}
					defer f.Close()
					in = f
				}
				if msgs, err = readKcat(in); err != nil {
					return err
				}
			}
			var e *engine
			if !noFetch {
				if e, err = a.openEngine(cmd.Context(), engineNeeds{}); err != nil {
					return err
				}
				defer e.Close()
			}
			var errs []error
			for i, m := range msgs {
				if i > 0 && !a.common.json {
					a.printf("\n")
				}
				if err := a.inspectOne(cmd, e, m); err != nil {
					errs = append(errs, err)
				}
			}
			return errors.Join(errs...)
		},
	}
	f := cmd.Flags()
	f.StringVar(&headersFile, "headers", "", "read the headers from `FILE`")
	f.StringVar(&bodyFile, "body", "", "read the body from `FILE`")
	f.BoolVar(&noFetch, "no-fetch", false, "show the contract fields only; do not read the stash")
	return cmd
}

func (a *app) inspectOne(cmd *cobra.Command, e *engine, m message) error {
	res := inspectJSON{Headers: m.headers}
	err := a.checkMessage(cmd, e, m, &res)
	if err != nil {
		res.Error = operatorMessage(err)
	}
	if a.common.json {
		if jerr := jsonLine(a.stdout, res); jerr != nil && err == nil {
			err = jerr
		}
		return err
	}
	if !res.ClaimChecked {
		a.printf("claim-checked: no (no %s header): the body is the payload itself, %d bytes\n", claimcheck.HeaderVersion, len(m.body))
		return err
	}
	// Every value below is the message's, not ours: shown made safe. A
	// contract that did not parse is shown as the message carries it, not
	// as the zero size and empty address it yielded.
	size, address := strconv.FormatInt(res.Size, 10), res.Address
	if res.Address == "" {
		size = "(missing)"
		if v, ok := m.headers[claimcheck.HeaderSize]; ok {
			size = v
		}
		address = string(m.body)
	}
	a.printf("claim-checked: yes\n%s: %s\n%s: %s\naddress: %s\n", claimcheck.HeaderVersion, shown(res.ContractVersion, maxShownValue),
		claimcheck.HeaderSize, shown(size, maxShownValue), shown(address, maxShownValue))
	keys := make([]string, 0, len(m.headers))
	for k := range m.headers {
		if k != claimcheck.HeaderVersion && k != claimcheck.HeaderSize {
			keys = append(keys, k)
		}
	}
	sort.Strings(keys)
	for _, k := range keys {
		a.printf("header: %s: %s\n", shown(k, maxShownValue), shown(m.headers[k], maxShownValue))
	}
	if res.Verified {
		a.printf("verified: yes, %d bytes match %s and the digest in the address\n", res.Stash.Size, claimcheck.HeaderSize)
	} else if e == nil && err == nil {
		a.printf("verified: not checked (--no-fetch)\n")
	}
	return err
}

// checkMessage fills res from the message and, with an engine, reads the
// stash to the end (which checks the digest) and compares its size with
// the header.
func (a *app) checkMessage(cmd *cobra.Command, e *engine, m message, res *inspectJSON) error {
	h := claimcheck.MapHeaders(m.headers)
	addr, size, ok, err := claimcheck.Reference(m.body, h)
	res.ClaimChecked = claimcheck.IsClaimChecked(h)
	res.ContractVersion, _ = h.Get(claimcheck.HeaderVersion)
	res.Address, res.Size = addr, size
	if err != nil {
		return usageError{err}
	}
	if !ok || e == nil {
		return nil
	}
	r, err := e.Open(cmd.Context(), addr)
	if err != nil {
		return err
	}
	defer r.Close()
	s := toJSON(r.Stash())
	res.Stash = &s
	if r.Size() != size {
		return fmt.Errorf("%w: %s says %d bytes, the stash records %d", stash.ErrIntegrity, claimcheck.HeaderSize, size, r.Size())
	}
	prog := a.newProgress("check", r.Stash().Name(), r.Size())
	n, err := io.Copy(io.Discard, prog.reader(r))
	prog.done(err)
	if err != nil {
		return err
	}
	if n != size {
		return fmt.Errorf("%w: %s says %d bytes, the stash holds %d", stash.ErrIntegrity, claimcheck.HeaderSize, size, n)
	}
	res.Verified = true
	return nil
}

// kcatMessage is one message as "kcat -J" prints it.
type kcatMessage struct {
	Headers json.RawMessage `json:"headers"`
	Payload json.RawMessage `json:"payload"`
}

// readKcat reads one or more kcat -J messages.
func readKcat(r io.Reader) ([]message, error) {
	dec := json.NewDecoder(io.LimitReader(r, maxMessage))
	var msgs []message
	for {
		var km kcatMessage
		err := dec.Decode(&km)
		if err == io.EOF {
			break
		}
		if err != nil {
			return nil, usagef("message %d: not kcat -J JSON (%s)", len(msgs)+1, jsonProblem(err))
		}
		h, err := parseJSONHeaders(km.Headers)
		if err != nil {
			return nil, usagef("message %d: %v", len(msgs)+1, err)
		}
		m := message{headers: h}
		if p := bytes.TrimSpace(km.Payload); len(p) > 0 && string(p) != "null" {
			var body string
			if err := json.Unmarshal(p, &body); err != nil {
				return nil, usagef("message %d: the payload is not a JSON string", len(msgs)+1)
			}
			m.body = []byte(body)
		}
		msgs = append(msgs, m)
	}
	if len(msgs) == 0 {
		return nil, usagef("no message on the input")
	}
	return msgs, nil
}

// parseJSONHeaders reads kcat's ["name", "value", ...] or an object.
func parseJSONHeaders(raw json.RawMessage) (map[string]string, error) {
	h := map[string]string{}
	raw = bytes.TrimSpace(raw)
	if len(raw) == 0 || string(raw) == "null" {
		return h, nil
	}
	if raw[0] == '{' {
		if err := json.Unmarshal(raw, &h); err != nil {
			return nil, errors.New("headers: want an object of strings")
		}
		return h, nil
	}
	var list []*string
	if err := json.Unmarshal(raw, &list); err != nil || len(list)%2 != 0 {
		return nil, errors.New(`headers: want ["name", "value", ...] or an object`)
	}
	for i := 0; i < len(list); i += 2 {
		if list[i] == nil {
			return nil, errors.New("headers: a header without a name")
		}
		v := ""
		if list[i+1] != nil {
			v = *list[i+1]
		}
		h[*list[i]] = v
	}
	return h, nil
}

// readParts reads headers and body from two files.
func readParts(headersFile, bodyFile string) (message, error) {
	hb, err := readSmall(headersFile)
	if err != nil {
		return message{}, err
	}
	body, err := readSmall(bodyFile)
	if err != nil {
		return message{}, err
	}
	var h map[string]string
	if t := bytes.TrimSpace(hb); len(t) > 0 && (t[0] == '{' || t[0] == '[') {
		h, err = parseJSONHeaders(t)
	} else {
		h, err = parseHeaderLines(hb)
	}
	if err != nil {
		return message{}, usagef("--headers %s: %v", headersFile, err)
	}
	return message{headers: h, body: body}, nil
}

// parseHeaderLines reads "name: value" lines (blank lines and # comments
// are skipped).
func parseHeaderLines(b []byte) (map[string]string, error) {
	h := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(b))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, ":")
		if !ok || strings.TrimSpace(k) == "" {
			return nil, errors.New("line " + strconv.Itoa(n) + ": want name: value")
		}
		h[strings.TrimSpace(k)] = strings.TrimSpace(v)
	}
	return h, sc.Err()
}

func readSmall(name string) ([]byte, error) {
	f, err := os.Open(name)
	if err != nil {
		return nil, err
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, maxMessage+1))
	if err != nil {
		return nil, err
	}
	if len(b) > maxMessage {
		return nil, usagef("%s: over %s, not a raw message", name, human(maxMessage))
	}
	return b, nil
}

// jsonProblem says what is wrong with JSON input without naming the Go
// types it was to be decoded into.
func jsonProblem(err error) string {
	var syn *json.SyntaxError
	switch {
	case errors.As(err, &syn):
		return fmt.Sprintf("%s at byte %d", syn.Error(), syn.Offset)
	case errors.Is(err, io.ErrUnexpectedEOF):
		return "it ends in the middle of a message"
	}
	var ute *json.UnmarshalTypeError
	if errors.As(err, &ute) {
		return fmt.Sprintf("%s is %s, not an object", "the message", ute.Value)
	}
	return "unreadable"
}
