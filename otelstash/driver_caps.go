package otelstash

// This file lists every combination of the optional driver capabilities, so
// that a wrapped driver has exactly the capabilities of the driver it wraps
// (the engine finds them by type assertion). A capability added to package
// driver is added here, to the list below and to the conformance test of
// this package, which fails until it is.

import "github.com/claimstash/claimstash/stash/driver"

// withCapabilities returns w with the optional capabilities of d.
func withCapabilities(w *wrapped, d driver.Driver) driver.Driver {
	u, hasU := d.(driver.Updater)
	m, hasM := d.(driver.Modifier)
	l, hasL := d.(driver.Lister)
	s, hasS := d.(driver.Signer)
	v, hasV := d.(driver.Verifier)
	type (
		U = updater
		M = modifier
		L = lister
		S = signer
		V = verifier
	)
	mask := 0
	for k, has := range []bool{hasU, hasM, hasL, hasS, hasV} {
		if has {
			mask |= 1 << k
		}
	}
	switch mask {
	case 31:
		return struct {
			*wrapped
			U
			M
			L
			S
			V
		}{w, U{w, u}, M{w, m}, L{w, l}, S{w, s}, V{w, v}}
	case 30:
		return struct {
			*wrapped
			M
			L
			S
			V
		}{w, M{w, m}, L{w, l}, S{w, s}, V{w, v}}
	case 29:
		return struct {
			*wrapped
			U
			L
			S
			V
		}{w, U{w, u}, L{w, l}, S{w, s}, V{w, v}}
	case 28:
		return struct {
			*wrapped
			L
			S
			V
		}{w, L{w, l}, S{w, s}, V{w, v}}
	case 27:
		return struct {
			*wrapped
			U
			M
			S
			V
		}{w, U{w, u}, M{w, m}, S{w, s}, V{w, v}}
	case 26:
		return struct {
			*wrapped
			M
			S
			V
		}{w, M{w, m}, S{w, s}, V{w, v}}
	case 25:
		return struct {
			*wrapped
			U
			S
			V
		}{w, U{w, u}, S{w, s}, V{w, v}}
	case 24:
		return struct {
			*wrapped
			S
			V
		}{w, S{w, s}, V{w, v}}
	case 23:
		return struct {
			*wrapped
			U
			M
			L
			V
		}{w, U{w, u}, M{w, m}, L{w, l}, V{w, v}}
	case 22:
		return struct {
			*wrapped
			M
			L
			V
		}{w, M{w, m}, L{w, l}, V{w, v}}
	case 21:
		return struct {
			*wrapped
			U
			L
			V
		}{w, U{w, u}, L{w, l}, V{w, v}}
	case 20:
		return struct {
			*wrapped
			L
			V
		}{w, L{w, l}, V{w, v}}
	case 19:
		return struct {
			*wrapped
			U
			M
			V
		}{w, U{w, u}, M{w, m}, V{w, v}}
	case 18:
		return struct {
			*wrapped
			M
			V
		}{w, M{w, m}, V{w, v}}
	case 17:
		return struct {
			*wrapped
			U
			V
		}{w, U{w, u}, V{w, v}}
	case 16:
		return struct {
			*wrapped
			V
		}{w, V{w, v}}
	case 15:
		return struct {
			*wrapped
			U
			M
			L
			S
		}{w, U{w, u}, M{w, m}, L{w, l}, S{w, s}}
	case 14:
		return struct {
			*wrapped
			M
			L
			S
		}{w, M{w, m}, L{w, l}, S{w, s}}
	case 13:
		return struct {
			*wrapped
			U
			L
			S
		}{w, U{w, u}, L{w, l}, S{w, s}}
	case 12:
		return struct {
			*wrapped
			L
			S
		}{w, L{w, l}, S{w, s}}
	case 11:
		return struct {
			*wrapped
			U
			M
			S
		}{w, U{w, u}, M{w, m}, S{w, s}}
	case 10:
		return struct {
			*wrapped
			M
			S
		}{w, M{w, m}, S{w, s}}
	case 9:
		return struct {
			*wrapped
			U
			S
		}{w, U{w, u}, S{w, s}}
	case 8:
		return struct {
			*wrapped
			S
		}{w, S{w, s}}
	case 7:
		return struct {
			*wrapped
			U
			M
			L
		}{w, U{w, u}, M{w, m}, L{w, l}}
	case 6:
		return struct {
			*wrapped
			M
			L
		}{w, M{w, m}, L{w, l}}
	case 5:
		return struct {
			*wrapped
			U
			L
		}{w, U{w, u}, L{w, l}}
	case 4:
		return struct {
			*wrapped
			L
		}{w, L{w, l}}
	case 3:
		return struct {
			*wrapped
			U
			M
		}{w, U{w, u}, M{w, m}}
	case 2:
		return struct {
			*wrapped
			M
		}{w, M{w, m}}
	case 1:
		return struct {
			*wrapped
			U
		}{w, U{w, u}}
	}
	return w
}
