package main

import (
	"context"
	"io"
	"time"

	"github.com/claimstash/claimstash/stash/driver"
	"github.com/schollz/progressbar/v3"
)

// progressFloor: transfers larger than this show progress on a terminal.
const progressFloor = 4 << 20

// progress is a one-line bar on stderr with the stash's name, the bytes so
// far, the rate and the time left. It is drawn only when stderr is a
// terminal, the transfer is large (or of unknown size) and --quiet is not
// set; otherwise every method does nothing.
type progress struct {
	bar   *progressbar.ProgressBar
	a     *app
	name  string
	total int64
}

func (a *app) newProgress(verb, name string, total int64) *progress {
	p := &progress{a: a, name: name, total: total}
	if !a.terminal || a.common.quiet || total >= 0 && total <= progressFloor {
		return p
	}
	p.bar = a.bar(verb, name, total)
	return p
}

// bar builds a bar that fits the terminal: the name is shortened so that
// description, bar and figures take at most the width of the line.
func (a *app) bar(verb, name string, total int64) *progressbar.ProgressBar {
	width := a.termWidth()
	desc := fitDesc(verb, name, width)
	barWidth := min(40, max(width-len(desc)-60, 5))
	if total < 0 {
		total = -1
	}
	return progressbar.NewOptions64(total,
		progressbar.OptionSetWriter(a.stderr),
		progressbar.OptionSetDescription(desc),
		progressbar.OptionShowBytes(true),
		progressbar.OptionShowCount(),
		progressbar.OptionUseIECUnits(true),
		progressbar.OptionSetWidth(barWidth),
		progressbar.OptionSetPredictTime(true),
		progressbar.OptionShowElapsedTimeOnFinish(),
		progressbar.OptionThrottle(100*time.Millisecond),
		progressbar.OptionSetRenderBlankState(true),
		progressbar.OptionOnCompletion(func() { _, _ = io.WriteString(a.stderr, "\n") }),
	)
}

// reader counts what is read through it.
func (p *progress) reader(r io.Reader) io.Reader {
	if p.bar == nil {
		return r
	}
	return &progressReader{r: r, bar: p.bar}
}

// storing restarts the bar for the write to the backend, of size stored
// bytes: what put's bar counts is what the backend has taken, not what was
// read.
func (p *progress) storing(size int64) {
	if p.bar == nil {
		return
	}
	p.bar.Reset()
	p.bar.ChangeMax64(size)
	p.bar.Describe(fitDesc("store", p.name, p.a.termWidth()))
}

// fitDesc is the bar's description, shortened to leave room for the
// figures ("100% |...| (1.0/2.0 GiB, 150 MiB/s) [1m2s:3m4s]", about 55
// columns) on a line of width columns.
func fitDesc(verb, name string, width int) string {
	desc := verb + " " + name
	if room := max(width-60, 12); len(desc) > room {
		desc = desc[:room-3] + "..."
	}
	return desc
}

func (a *app) termWidth() int {
	if a.width != nil {
		return a.width()
	}
	return 80
}

// done finishes the bar: complete after a success, left where it stopped
// (on a line of its own) after a failure.
func (p *progress) done(err error) {
	if p.bar == nil {
		return
	}
	if err == nil {
		_ = p.bar.Finish()
		return
	}
	_ = p.bar.Exit()
	_, _ = io.WriteString(p.a.stderr, "\n")
}

type progressReader struct {
	r   io.Reader
	bar *progressbar.ProgressBar
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	if n > 0 {
		_ = pr.bar.Add(n)
	}
	return n, err
}

// storeCounter wraps a backend for put, so the bar counts the bytes the
// backend takes; driver.Wrap keeps the backend's optional capabilities.
type storeCounter struct {
	driver.Driver
	p *progress
}

func (s *storeCounter) Put(ctx context.Context, ns, key string, r io.Reader, size int64, attrs *driver.Attributes) error {
	s.p.storing(size)
	return s.Driver.Put(ctx, ns, key, s.p.reader(r), size, attrs)
}

// counting returns the wrap function for put's engine.
func (p *progress) counting() func(driver.Driver) driver.Driver {
	if p.bar == nil {
		return nil
	}
	return func(d driver.Driver) driver.Driver {
		return driver.Wrap(&storeCounter{Driver: d, p: p}, d)
	}
}
