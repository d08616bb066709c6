package ccnats

// KeepMaxPayload sets the max_payload the publishers of w (a *Conn, a
// *WrappedConn and its JetStreamContext, or a *JetStream) keep, as if they
// had read it from a server the connection has left since.
func KeepMaxPayload(w any, v int64) {
	switch w := w.(type) {
	case *Conn:
		w.mp.last.Store(v)
	case *WrappedConn:
		w.mp.last.Store(v)
	case *JetStream:
		w.mp.last.Store(v)
	default:
		panic("KeepMaxPayload: not a publisher")
	}
}
