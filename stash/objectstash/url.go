package objectstash

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"github.com/claimstash/claimstash/osauth"
	"github.com/claimstash/claimstash/stash/driver"
)

// OpenURL opens "objectstore://host:port[/base]?…": the endpoint is
// https://host:port/base, or http:// with plaintext=true. Parameters:
// plaintext, ca_file, token_file (a static token), kid and key_file (sign
// scoped tokens), token_lifetime, connect_timeout, retries, read_timeout,
// part_size, parallel_above, concurrency. Unknown ones are refused.
func OpenURL(_ context.Context, u *url.URL) (*Store, error) {
	if u.Scheme != Scheme || u.Host == "" || u.User != nil || u.Fragment != "" || u.Opaque != "" {
		return nil, fmt.Errorf("%w: objectstash: URL %q: want objectstore://host[:port][/path][?options]", driver.ErrInvalidAddress, u.Redacted())
	}
	if err := driver.CheckHost(u); err != nil {
		return nil, fmt.Errorf("%w: objectstash: URL %q: %v", driver.ErrInvalidAddress, u.Redacted(), err)
	}
	scheme := "https"
	var opts []Option
	var kid, keyFile string
	params, err := driver.URLParams(u)
	if err != nil {
		return nil, fmt.Errorf("%w: objectstash: %v", driver.ErrInvalidAddress, err)
	}
	for k, v := range params {
		bad := func(err error) error {
			return fmt.Errorf("%w: objectstash: URL parameter %s=%q: %v", driver.ErrInvalidAddress, k, v, err)
		}
		switch k {
		case "plaintext":
			on, err := strconv.ParseBool(v)
			if err != nil {
				return nil, bad(err)
			}
			if on {
				scheme = "http"
			}
		case "ca_file":
			pem, err := os.ReadFile(v)
			if err != nil {
				return nil, bad(err)
			}
			pool := x509.NewCertPool()
			if !pool.AppendCertsFromPEM(pem) {
				return nil, bad(fmt.Errorf("no certificates"))
			}
			opts = append(opts, WithTLSConfig(&tls.Config{RootCAs: pool, MinVersion: tls.VersionTLS12}))
		case "token_file":
			b, err := os.ReadFile(v)
			if err != nil {
				return nil, bad(err)
			}
			opts = append(opts, WithToken(strings.TrimSpace(string(b))))
		case "kid":
			kid = v
		case "key_file":
			keyFile = v
		case "token_lifetime", "connect_timeout", "read_timeout":
			d, err := time.ParseDuration(v)
			if err != nil || d < 0 {
				return nil, bad(fmt.Errorf("want a duration such as 100ms"))
			}
			switch k {
			case "token_lifetime":
				opts = append(opts, WithTokenLifetime(d))
			case "connect_timeout":
				opts = append(opts, WithConnectTimeout(d))
			default:
				opts = append(opts, WithReadTimeout(d))
			}
		case "retries", "concurrency", "part_size", "parallel_above":
			n, err := strconv.ParseInt(v, 10, 64)
			if err != nil || n < 0 {
				return nil, bad(fmt.Errorf("want a number"))
			}
			switch k {
			case "retries":
				opts = append(opts, WithConnectRetries(int(n)))
			case "concurrency":
				opts = append(opts, WithConcurrency(int(n)))
			case "parallel_above":
				opts = append(opts, WithParallelAbove(n))
			default:
				opts = append(opts, WithPartSize(n))
			}
		default:
			return nil, fmt.Errorf("%w: objectstash: unknown URL parameter %q (known: plaintext, ca_file, token_file, kid, key_file, token_lifetime, connect_timeout, retries, read_timeout, part_size, parallel_above, concurrency)", driver.ErrInvalidAddress, k)
		}
	}
	if (kid == "") != (keyFile == "") {
		return nil, fmt.Errorf("%w: objectstash: URL parameters kid and key_file go together", driver.ErrInvalidAddress)
	}
	if kid != "" {
		s, err := osauth.NewSigner(kid, keyFile)
		if err != nil {
			return nil, err
		}
		opts = append(opts, WithSigner(s))
	}
	return New(scheme+"://"+u.Host+u.EscapedPath(), opts...)
}
