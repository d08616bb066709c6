package ccnats

import "errors"

// ErrHeadersNotSupported: the server the connection is attached to does not
// support message headers (or the connection is not connected yet, so the
// server's support is unknown). The claim-check contract travels in
// headers, so the publishers refuse such a connection.
var ErrHeadersNotSupported = errors.New("ccnats: server does not support headers")
