package main

import (
	"fmt"
	"io"
	"os"
	"time"
)

// isTerminal reports whether w is a terminal (a character device).
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	if !ok {
		return false
	}
	fi, err := f.Stat()
	return err == nil && fi.Mode()&os.ModeCharDevice != 0
}

// progress draws a one-line progress bar on stderr for transfers over
// progressFloor bytes (or of unknown size) when stderr is a terminal.
type progress struct {
	w            io.Writer // nil: disabled
	op           string
	total, n     int64
	start, drawn time.Time
	now          func() time.Time
}

func (a *app) progress(op string, total int64) *progress {
	p := &progress{op: op, total: total, now: time.Now}
	if a.terminal && !a.quiet && (total < 0 || total > progressFloor) {
		p.w = a.stderr
	}
	p.start = p.now()
	return p
}

func (p *progress) reader(r io.Reader) io.Reader {
	if p.w == nil {
		return r
	}
	return &progressReader{r: r, p: p}
}

type progressReader struct {
	r io.Reader
	p *progress
}

func (pr *progressReader) Read(b []byte) (int, error) {
	n, err := pr.r.Read(b)
	pr.p.add(int64(n))
	return n, err
}

func (p *progress) add(n int64) {
	p.n += n
	if p.n <= progressFloor {
		return
	}
	if now := p.now(); now.Sub(p.drawn) >= 200*time.Millisecond {
		p.drawn = now
		p.draw()
	}
}

func (p *progress) draw() {
	elapsed := p.now().Sub(p.start).Seconds()
	rate := ""
	if elapsed > 0 {
		rate = human(int64(float64(p.n)/elapsed)) + "/s"
	}
	if p.total > 0 {
		const width = 30
		frac := float64(p.n) / float64(p.total)
		if frac > 1 {
			frac = 1
		}
		fill := int(frac * width)
		bar := make([]byte, width)
		for i := range bar {
			bar[i] = ' '
			if i < fill {
				bar[i] = '='
			}
		}
		fmt.Fprintf(p.w, "\r%s [%s] %5.1f%% %s / %s %s\x1b[K", p.op, bar, 100*frac, human(p.n), human(p.total), rate)
		return
	}
	fmt.Fprintf(p.w, "\r%s %s %s\x1b[K", p.op, human(p.n), rate)
}

// done finishes the line, if anything was drawn.
func (p *progress) done() {
	if p.w == nil || p.drawn.IsZero() {
		return
	}
	p.draw()
	fmt.Fprintln(p.w)
}

// human formats a byte count.
func human(n int64) string {
	const unit = 1024
	if n < unit {
		return fmt.Sprintf("%d B", n)
	}
	div, exp := int64(unit), 0
	for m := n / unit; m >= unit; m /= unit {
		div *= unit
		exp++
	}
	return fmt.Sprintf("%.1f %ciB", float64(n)/float64(div), "KMGTPE"[exp])
}
