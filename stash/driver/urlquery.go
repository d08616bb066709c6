package driver

import (
	"fmt"
	"net/url"
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
