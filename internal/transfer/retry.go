package transfer

import (
	"context"
	"errors"
	"math/rand/v2"
	"time"

	"github.com/sregistry/sregistry/internal/progress"
)

// Defaults of RetryPolicy for zero fields.
const (
	DefaultMaxAttempts = 6
	DefaultBaseDelay   = 500 * time.Millisecond
	DefaultMaxDelay    = 30 * time.Second
)

func (p RetryPolicy) withDefaults() RetryPolicy {
	if p.MaxAttempts <= 0 {
		p.MaxAttempts = DefaultMaxAttempts
	}
	if p.BaseDelay <= 0 {
		p.BaseDelay = DefaultBaseDelay
	}
	if p.MaxDelay <= 0 {
		p.MaxDelay = DefaultMaxDelay
	}
	return p
}

// backoff is the wait before retry number n (1-based): BaseDelay doubled
// per retry, capped at MaxDelay, with "equal jitter" (half fixed, half random)
// so parallel workers do not retry in lockstep.
func (p RetryPolicy) backoff(n int) time.Duration {
	d := p.BaseDelay
	for i := 1; i < n && d < p.MaxDelay; i++ {
		d *= 2
	}
	d = min(d, p.MaxDelay)
	half := d / 2
	if half <= 0 {
		return d
	}
	return half + rand.N(half+1)
}

// wait returns how long to wait before retry n after err: the server's
// Retry-After when it gave one, else the backoff.
func (p RetryPolicy) wait(n int, err error) time.Duration {
	var he *HTTPError
	if errors.As(err, &he) && he.retryAfter > 0 {
		return he.retryAfter
	}
	return p.backoff(n)
}

// sleep waits d or until ctx is done.
func (d *Downloader) sleep(ctx context.Context, dur time.Duration) error {
	if d.Sleep != nil {
		return d.Sleep(ctx, dur)
	}
	if dur <= 0 {
		return ctx.Err()
	}
	t := time.NewTimer(dur)
	defer t.Stop()
	select {
	case <-t.C:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// retrier counts attempts for one request (or one chunk) and decides whether
// and how long to wait before the next one.
type retrier struct {
	d        *Downloader
	policy   RetryPolicy
	rep      progress.Reporter
	attempts int // failed attempts since the last progress
}

func (d *Downloader) newRetrier(rep progress.Reporter) *retrier {
	if rep == nil {
		rep = progress.Discard()
	}
	return &retrier{d: d, policy: d.Retry.withDefaults(), rep: rep}
}

// progressed resets the attempt count: a stream that moved bytes before it
// was cut gets a full set of attempts again, so long pulls over a flaky
// network finish, while a request that never gets anywhere still gives up.
func (r *retrier) progressed() { r.attempts = 0 }

// next reports err as failed attempt; it returns nil after waiting when
// another attempt should be made, or the error to give up with.
func (r *retrier) next(ctx context.Context, err error) error {
	if ctxErr := ctx.Err(); ctxErr != nil {
		return ctxErr
	}
	if IsPermanent(err) {
		return err
	}
	r.attempts++
	if r.attempts >= r.policy.MaxAttempts {
		return err
	}
	wait := r.policy.wait(r.attempts, err)
	r.d.debugf("retry %d/%d in %s: %v", r.attempts, r.policy.MaxAttempts-1, wait, err)
	r.rep.Retry(err, wait)
	if serr := r.d.sleep(ctx, wait); serr != nil {
		return serr
	}
	return nil
}

func (d *Downloader) debugf(format string, args ...any) {
	if d.Debugf != nil {
		d.Debugf(format, args...)
	}
}
