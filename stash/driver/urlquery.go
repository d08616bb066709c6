package driver

import (
	"errors"
	"fmt"
	"net/netip"
	"net/url"
	"strconv"
	"strings"
)

// URLParams parses the query of a backend URL, in which every parameter may
// be given at most once. Backends' OpenURL functions use it so that
// "?a=1&a=2" is refused the same way everywhere instead of one of the values
// winning silently.
func URLParams(u *url.URL) (map[string]string, error) {
	q, err := url.ParseQuery(u.RawQuery)
	if err != nil {
		return nil, fmt.Errorf("URL query: %w", err)
	}
	params := make(map[string]string, len(q))
	for k, vs := range q {
		if len(vs) != 1 {
			return nil, fmt.Errorf("URL parameter %q given %d times", k, len(vs))
		}
		params[k] = vs[0]
	}
	return params, nil
}

// CheckHost checks the host of a backend URL (u.Host: "host[:port]"), so
// that an opener refuses a URL that can never be reached when it is
// opened, not at its first request: the host must be an IP address or a
// DNS name (ASCII letters, digits, '-' and '_' in labels of at most 63
// bytes, 253 in all), and the port, when the URL gives one, a number from
// 1 to 65535. It returns the reason, for the opener to wrap with
// ErrInvalidAddress and its package name.
func CheckHost(u *url.URL) error {
	host, port := u.Hostname(), u.Port()
	switch {
	case host == "":
		return errors.New("no host")
	case strings.HasSuffix(u.Host, ":") && port == "":
		return errors.New("empty port after the host")
	case port != "":
		n, err := strconv.Atoi(port)
		if err != nil || n < 1 || n > 65535 {
			return fmt.Errorf("port %s out of range 1-65535", truncate(port))
		}
	}
	if _, err := netip.ParseAddr(host); err == nil {
		return nil
	}
	if strings.HasPrefix(u.Host, "[") {
		return fmt.Errorf("host %+q is not an IP address", truncate(host))
	}
	if !validHostName(host) {
		return fmt.Errorf("host %+q: want a DNS name or an IP address", truncate(host))
	}
	return nil
}

func validHostName(h string) bool {
	h = strings.TrimSuffix(h, ".")
	if h == "" || len(h) > 253 {
		return false
	}
	for label := range strings.SplitSeq(h, ".") {
		if label == "" || len(label) > 63 || label[0] == '-' || label[len(label)-1] == '-' {
			return false
		}
		for i := 0; i < len(label); i++ {
			c := label[i]
			if !('a' <= c && c <= 'z' || 'A' <= c && c <= 'Z' || '0' <= c && c <= '9' || c == '-' || c == '_') {
				return false
			}
		}
	}
	return true
}

func truncate(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}
