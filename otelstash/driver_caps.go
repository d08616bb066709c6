package otelstash

// This file lists every combination of the optional driver capabilities, so
// that a wrapped driver has exactly the capabilities of the driver it wraps
// (the engine finds them by type assertion). A capability added to package
// driver is added here, to the list below and to the capability test of
// this package; the backend conformance suite, which this package runs
// through the wrapper, fails until it is.

import "github.com/claimstash/claimstash/stash/driver"

// withCapabilities returns w with the optional capabilities of d.
func withCapabilities(w *wrapped, d driver.Driver) driver.Driver {
	u, hasU := d.(driver.Updater)
	m, hasM := d.(driver.Modifier)
	cd, hasD := d.(driver.ConditionalDeleter)
	l, hasL := d.(driver.Lister)
	s, hasS := d.(driver.Signer)
	v, hasV := d.(driver.Verifier)
	type (
		U = updater
		M = modifier
		D = deleter
		L = lister
		S = signer
		V = verifier
	)
	mask := 0
	for k, has := range []bool{hasU, hasM, hasD, hasL, hasS, hasV} {
		if has {
			mask |= 1 << k
		}
	}
	switch mask {
	case 63:
		return struct {
			*wrapped
			U
			M
			D
			L
			S
			V
		}{w, U{w, u}, M{w, m}, D{w, cd}, L{w, l}, S{w, s}, V{w, v}}
	case 62:
		return struct {
			*wrapped
			M
			D
			L
			S
			V
		}{w, M{w, m}, D{w, cd}, L{w, l}, S{w, s}, V{w, v}}
	case 61:
		return struct {
			*wrapped
			U
			D
			L
			S
			V
		}{w, U{w, u}, D{w, cd}, L{w, l}, S{w, s}, V{w, v}}
	case 60:
		return struct {
			*wrapped
			D
			L
			S
			V
		}{w, D{w, cd}, L{w, l}, S{w, s}, V{w, v}}
	case 59:
		return struct {
			*wrapped
			U
			M
			L
			S
			V
		}{w, U{w, u}, M{w, m}, L{w, l}, S{w, s}, V{w, v}}
	case 58:
		return struct {
			*wrapped
			M
			L
			S
			V
		}{w, M{w, m}, L{w, l}, S{w, s}, V{w, v}}
	case 57:
		return struct {
			*wrapped
			U
			L
			S
			V
		}{w, U{w, u}, L{w, l}, S{w, s}, V{w, v}}
	case 56:
		return struct {
			*wrapped
			L
			S
			V
		}{w, L{w, l}, S{w, s}, V{w, v}}
	case 55:
		return struct {
			*wrapped
			U
			M
			D
			S
			V
		}{w, U{w, u}, M{w, m}, D{w, cd}, S{w, s}, V{w, v}}
	case 54:
		return struct {
			*wrapped
			M
			D
			S
			V
		}{w, M{w, m}, D{w, cd}, S{w, s}, V{w, v}}
	case 53:
		return struct {
			*wrapped
			U
			D
			S
			V
		}{w, U{w, u}, D{w, cd}, S{w, s}, V{w, v}}
	case 52:
		return struct {
			*wrapped
			D
			S
			V
		}{w, D{w, cd}, S{w, s}, V{w, v}}
	case 51:
		return struct {
			*wrapped
			U
			M
			S
			V
		}{w, U{w, u}, M{w, m}, S{w, s}, V{w, v}}
	case 50:
		return struct {
			*wrapped
			M
			S
			V
		}{w, M{w, m}, S{w, s}, V{w, v}}
	case 49:
		return struct {
			*wrapped
			U
			S
			V
		}{w, U{w, u}, S{w, s}, V{w, v}}
	case 48:
		return struct {
			*wrapped
			S
			V
		}{w, S{w, s}, V{w, v}}
	case 47:
		return struct {
			*wrapped
			U
			M
			D
			L
			V
		}{w, U{w, u}, M{w, m}, D{w, cd}, L{w, l}, V{w, v}}
	case 46:
		return struct {
			*wrapped
			M
			D
			L
			V
		}{w, M{w, m}, D{w, cd}, L{w, l}, V{w, v}}
	case 45:
		return struct {
			*wrapped
			U
			D
			L
			V
		}{w, U{w, u}, D{w, cd}, L{w, l}, V{w, v}}
	case 44:
		return struct {
			*wrapped
			D
			L
			V
		}{w, D{w, cd}, L{w, l}, V{w, v}}
	case 43:
		return struct {
			*wrapped
			U
			M
			L
			V
		}{w, U{w, u}, M{w, m}, L{w, l}, V{w, v}}
	case 42:
		return struct {
			*wrapped
			M
			L
			V
		}{w, M{w, m}, L{w, l}, V{w, v}}
	case 41:
		return struct {
			*wrapped
			U
			L
			V
		}{w, U{w, u}, L{w, l}, V{w, v}}
	case 40:
		return struct {
			*wrapped
			L
			V
		}{w, L{w, l}, V{w, v}}
	case 39:
		return struct {
			*wrapped
			U
			M
			D
			V
		}{w, U{w, u}, M{w, m}, D{w, cd}, V{w, v}}
	case 38:
		return struct {
			*wrapped
			M
			D
			V
		}{w, M{w, m}, D{w, cd}, V{w, v}}
	case 37:
		return struct {
			*wrapped
			U
			D
			V
		}{w, U{w, u}, D{w, cd}, V{w, v}}
	case 36:
		return struct {
			*wrapped
			D
			V
		}{w, D{w, cd}, V{w, v}}
	case 35:
		return struct {
			*wrapped
			U
			M
			V
		}{w, U{w, u}, M{w, m}, V{w, v}}
	case 34:
		return struct {
			*wrapped
			M
			V
		}{w, M{w, m}, V{w, v}}
	case 33:
		return struct {
			*wrapped
			U
			V
		}{w, U{w, u}, V{w, v}}
	case 32:
		return struct {
			*wrapped
			V
		}{w, V{w, v}}
	case 31:
		return struct {
			*wrapped
			U
			M
			D
			L
			S
		}{w, U{w, u}, M{w, m}, D{w, cd}, L{w, l}, S{w, s}}
	case 30:
		return struct {
			*wrapped
			M
			D
			L
			S
		}{w, M{w, m}, D{w, cd}, L{w, l}, S{w, s}}
	case 29:
		return struct {
			*wrapped
			U
			D
			L
			S
		}{w, U{w, u}, D{w, cd}, L{w, l}, S{w, s}}
	case 28:
		return struct {
			*wrapped
			D
			L
			S
		}{w, D{w, cd}, L{w, l}, S{w, s}}
	case 27:
		return struct {
			*wrapped
			U
			M
			L
			S
		}{w, U{w, u}, M{w, m}, L{w, l}, S{w, s}}
	case 26:
		return struct {
			*wrapped
			M
			L
			S
		}{w, M{w, m}, L{w, l}, S{w, s}}
	case 25:
		return struct {
			*wrapped
			U
			L
			S
		}{w, U{w, u}, L{w, l}, S{w, s}}
	case 24:
		return struct {
			*wrapped
			L
			S
		}{w, L{w, l}, S{w, s}}
	case 23:
		return struct {
			*wrapped
			U
			M
			D
			S
		}{w, U{w, u}, M{w, m}, D{w, cd}, S{w, s}}
	case 22:
		return struct {
			*wrapped
			M
			D
			S
		}{w, M{w, m}, D{w, cd}, S{w, s}}
	case 21:
		return struct {
			*wrapped
			U
			D
			S
		}{w, U{w, u}, D{w, cd}, S{w, s}}
	case 20:
		return struct {
			*wrapped
			D
			S
		}{w, D{w, cd}, S{w, s}}
	case 19:
		return struct {
			*wrapped
			U
			M
			S
		}{w, U{w, u}, M{w, m}, S{w, s}}
	case 18:
		return struct {
			*wrapped
			M
			S
		}{w, M{w, m}, S{w, s}}
	case 17:
		return struct {
			*wrapped
			U
			S
		}{w, U{w, u}, S{w, s}}
	case 16:
		return struct {
			*wrapped
			S
		}{w, S{w, s}}
	case 15:
		return struct {
			*wrapped
			U
			M
			D
			L
		}{w, U{w, u}, M{w, m}, D{w, cd}, L{w, l}}
	case 14:
		return struct {
			*wrapped
			M
			D
			L
		}{w, M{w, m}, D{w, cd}, L{w, l}}
	case 13:
		return struct {
			*wrapped
			U
			D
			L
		}{w, U{w, u}, D{w, cd}, L{w, l}}
	case 12:
		return struct {
			*wrapped
			D
			L
		}{w, D{w, cd}, L{w, l}}
	case 11:
		return struct {
			*wrapped
			U
			M
			L
		}{w, U{w, u}, M{w, m}, L{w, l}}
	case 10:
		return struct {
			*wrapped
			M
			L
		}{w, M{w, m}, L{w, l}}
	case 9:
		return struct {
			*wrapped
			U
			L
		}{w, U{w, u}, L{w, l}}
	case 8:
		return struct {
			*wrapped
			L
		}{w, L{w, l}}
	case 7:
		return struct {
			*wrapped
			U
			M
			D
		}{w, U{w, u}, M{w, m}, D{w, cd}}
	case 6:
		return struct {
			*wrapped
			M
			D
		}{w, M{w, m}, D{w, cd}}
	case 5:
		return struct {
			*wrapped
			U
			D
		}{w, U{w, u}, D{w, cd}}
	case 4:
		return struct {
			*wrapped
			D
		}{w, D{w, cd}}
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
