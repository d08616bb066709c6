package driver_test

import (
	"context"
	"errors"
	"net/url"
	"testing"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/claimstash/claimstash/stash/memstash"
	"github.com/claimstash/claimstash/stash/stashtest"
)

// Drivers with every combination of the first six optional capabilities
// (Updater to Verifier), and with BytesKeeper and ExclusivePutter alone,
// together and with all six.
type (
	base struct{ driver.Driver }
	upd  struct{}
	mod  struct{}
	cdel struct{}
	lst  struct{}
	sgn  struct{}
	vrf  struct{}
)

func (upd) UpdateAttributes(context.Context, string, string, *driver.Attributes) error { return nil }
func (mod) ModifyAttributes(context.Context, string, string, func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	return nil, nil
}
func (cdel) DeleteIf(context.Context, string, string, func(*driver.Attributes) bool) (bool, error) {
	return false, nil
}
func (lst) List(context.Context, func(string, string, *driver.Attributes) error) error { return nil }
func (sgn) SignURL(context.Context, driver.LinkRequest) (string, error) {
	return "https://signed", nil
}
func (vrf) VerifyURL(string, *url.URL, time.Time) error { return nil }

type bpt struct{}

func (bpt) KeepsBytes() bool { return true }

type xpt struct{}

func (xpt) ExclusivePut(int64) bool { return true }

type (
	dB struct {
		base
		bpt
	}
	dUMDLSVB struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
		bpt
	}
	dX struct {
		base
		xpt
	}
	dBX struct {
		base
		bpt
		xpt
	}
	dUMDLSVBX struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
		bpt
		xpt
	}
)

type (
	dU struct {
		base
		upd
	}
	dM struct {
		base
		mod
	}
	dUM struct {
		base
		upd
		mod
	}
	dD struct {
		base
		cdel
	}
	dUD struct {
		base
		upd
		cdel
	}
	dMD struct {
		base
		mod
		cdel
	}
	dUMD struct {
		base
		upd
		mod
		cdel
	}
	dL struct {
		base
		lst
	}
	dUL struct {
		base
		upd
		lst
	}
	dML struct {
		base
		mod
		lst
	}
	dUML struct {
		base
		upd
		mod
		lst
	}
	dDL struct {
		base
		cdel
		lst
	}
	dUDL struct {
		base
		upd
		cdel
		lst
	}
	dMDL struct {
		base
		mod
		cdel
		lst
	}
	dUMDL struct {
		base
		upd
		mod
		cdel
		lst
	}
	dS struct {
		base
		sgn
	}
	dUS struct {
		base
		upd
		sgn
	}
	dMS struct {
		base
		mod
		sgn
	}
	dUMS struct {
		base
		upd
		mod
		sgn
	}
	dDS struct {
		base
		cdel
		sgn
	}
	dUDS struct {
		base
		upd
		cdel
		sgn
	}
	dMDS struct {
		base
		mod
		cdel
		sgn
	}
	dUMDS struct {
		base
		upd
		mod
		cdel
		sgn
	}
	dLS struct {
		base
		lst
		sgn
	}
	dULS struct {
		base
		upd
		lst
		sgn
	}
	dMLS struct {
		base
		mod
		lst
		sgn
	}
	dUMLS struct {
		base
		upd
		mod
		lst
		sgn
	}
	dDLS struct {
		base
		cdel
		lst
		sgn
	}
	dUDLS struct {
		base
		upd
		cdel
		lst
		sgn
	}
	dMDLS struct {
		base
		mod
		cdel
		lst
		sgn
	}
	dUMDLS struct {
		base
		upd
		mod
		cdel
		lst
		sgn
	}
	dV struct {
		base
		vrf
	}
	dUV struct {
		base
		upd
		vrf
	}
	dMV struct {
		base
		mod
		vrf
	}
	dUMV struct {
		base
		upd
		mod
		vrf
	}
	dDV struct {
		base
		cdel
		vrf
	}
	dUDV struct {
		base
		upd
		cdel
		vrf
	}
	dMDV struct {
		base
		mod
		cdel
		vrf
	}
	dUMDV struct {
		base
		upd
		mod
		cdel
		vrf
	}
	dLV struct {
		base
		lst
		vrf
	}
	dULV struct {
		base
		upd
		lst
		vrf
	}
	dMLV struct {
		base
		mod
		lst
		vrf
	}
	dUMLV struct {
		base
		upd
		mod
		lst
		vrf
	}
	dDLV struct {
		base
		cdel
		lst
		vrf
	}
	dUDLV struct {
		base
		upd
		cdel
		lst
		vrf
	}
	dMDLV struct {
		base
		mod
		cdel
		lst
		vrf
	}
	dUMDLV struct {
		base
		upd
		mod
		cdel
		lst
		vrf
	}
	dSV struct {
		base
		sgn
		vrf
	}
	dUSV struct {
		base
		upd
		sgn
		vrf
	}
	dMSV struct {
		base
		mod
		sgn
		vrf
	}
	dUMSV struct {
		base
		upd
		mod
		sgn
		vrf
	}
	dDSV struct {
		base
		cdel
		sgn
		vrf
	}
	dUDSV struct {
		base
		upd
		cdel
		sgn
		vrf
	}
	dMDSV struct {
		base
		mod
		cdel
		sgn
		vrf
	}
	dUMDSV struct {
		base
		upd
		mod
		cdel
		sgn
		vrf
	}
	dLSV struct {
		base
		lst
		sgn
		vrf
	}
	dULSV struct {
		base
		upd
		lst
		sgn
		vrf
	}
	dMLSV struct {
		base
		mod
		lst
		sgn
		vrf
	}
	dUMLSV struct {
		base
		upd
		mod
		lst
		sgn
		vrf
	}
	dDLSV struct {
		base
		cdel
		lst
		sgn
		vrf
	}
	dUDLSV struct {
		base
		upd
		cdel
		lst
		sgn
		vrf
	}
	dMDLSV struct {
		base
		mod
		cdel
		lst
		sgn
		vrf
	}
	dUMDLSV struct {
		base
		upd
		mod
		cdel
		lst
		sgn
		vrf
	}
)

// outer wraps a driver and has every optional capability itself, answering
// "outer", and a method beyond a driver's.
type outer struct{ driver.Driver }

func (outer) UpdateAttributes(context.Context, string, string, *driver.Attributes) error {
	return errOuter
}
func (outer) ModifyAttributes(context.Context, string, string, func(*driver.Attributes) *driver.Attributes) (*driver.Attributes, error) {
	return nil, errOuter
}
func (outer) DeleteIf(context.Context, string, string, func(*driver.Attributes) bool) (bool, error) {
	return false, errOuter
}
func (outer) List(context.Context, func(string, string, *driver.Attributes) error) error {
	return errOuter
}
func (outer) SignURL(context.Context, driver.LinkRequest) (string, error) {
	return "https://outer", nil
}
func (outer) VerifyURL(string, *url.URL, time.Time) error { return errOuter }
func (outer) KeepsBytes() bool                            { return false }
func (outer) ExclusivePut(int64) bool                     { return false }
func (outer) Extra()                                      {}

var errOuter = errors.New("outer")

// TestWrap: a wrapper through driver.Wrap has exactly the capabilities of
// the driver it wraps, whether it has none of them itself (they go to the
// wrapped driver) or all of them (its own serve), no method of the wrapper
// beyond a driver's, and an Unwrap to the wrapped driver.
func TestWrap(t *testing.T) {
	m := memstash.New()
	b := base{m}
	drivers := []driver.Driver{b, m, dB{base: b}, dUMDLSVB{base: b}, dX{base: b}, dBX{base: b}, dUMDLSVBX{base: b}, dU{base: b}, dM{base: b}, dUM{base: b}, dD{base: b}, dUD{base: b}, dMD{base: b}, dUMD{base: b}, dL{base: b}, dUL{base: b}, dML{base: b}, dUML{base: b}, dDL{base: b}, dUDL{base: b}, dMDL{base: b}, dUMDL{base: b}, dS{base: b}, dUS{base: b}, dMS{base: b}, dUMS{base: b}, dDS{base: b}, dUDS{base: b}, dMDS{base: b}, dUMDS{base: b}, dLS{base: b}, dULS{base: b}, dMLS{base: b}, dUMLS{base: b}, dDLS{base: b}, dUDLS{base: b}, dMDLS{base: b}, dUMDLS{base: b}, dV{base: b}, dUV{base: b}, dMV{base: b}, dUMV{base: b}, dDV{base: b}, dUDV{base: b}, dMDV{base: b}, dUMDV{base: b}, dLV{base: b}, dULV{base: b}, dMLV{base: b}, dUMLV{base: b}, dDLV{base: b}, dUDLV{base: b}, dMDLV{base: b}, dUMDLV{base: b}, dSV{base: b}, dUSV{base: b}, dMSV{base: b}, dUMSV{base: b}, dDSV{base: b}, dUDSV{base: b}, dMDSV{base: b}, dUMDSV{base: b}, dLSV{base: b}, dULSV{base: b}, dMLSV{base: b}, dUMLSV{base: b}, dDLSV{base: b}, dUDLSV{base: b}, dMDLSV{base: b}, dUMDLSV{base: b}}
	ctx := context.Background()
	for _, d := range drivers {
		for _, o := range []driver.Driver{struct{ driver.Driver }{d}, outer{d}} {
			_, own := o.(outer)
			w := driver.Wrap(o, d)
			if stashtest.Capabilities(w) != stashtest.Capabilities(d) {
				t.Errorf("%T in %T: wrapped has capabilities %q, want %q", d, o, stashtest.Capabilities(w), stashtest.Capabilities(d))
			}
			if w.Scheme() != d.Scheme() {
				t.Errorf("%T in %T: scheme %q, want %q", d, o, w.Scheme(), d.Scheme())
			}
			if u, ok := w.(interface{ Unwrap() driver.Driver }); !ok || u.Unwrap() != d {
				t.Errorf("%T in %T: Unwrap does not return the wrapped driver", d, o)
			}
			if _, ok := w.(interface{ Extra() }); ok {
				t.Errorf("%T in %T: the wrapper's own method beyond a driver's is served", d, o)
			}
			want := map[bool]string{false: "https://signed", true: "https://outer"}[own]
			if s, ok := w.(driver.Signer); ok {
				if u, err := s.SignURL(ctx, driver.LinkRequest{Namespace: "ns", Key: "k"}); err != nil || u != want {
					t.Errorf("%T in %T: SignURL %q, %v, want %q", d, o, u, err, want)
				}
			}
			if x, ok := w.(driver.ExclusivePutter); ok && x.ExclusivePut(1) == own {
				t.Errorf("%T in %T: ExclusivePut not served by the %s", d, o, map[bool]string{false: "wrapped driver", true: "wrapper"}[own])
			}
			if u, ok := w.(driver.Updater); ok && errors.Is(u.UpdateAttributes(ctx, "ns", "k", &driver.Attributes{}), errOuter) != own {
				t.Errorf("%T in %T: UpdateAttributes not served by the %s", d, o, map[bool]string{false: "wrapped driver", true: "wrapper"}[own])
			}
		}
	}
}
