package auth

import "time"

// ReloadByHand makes r reload whenever the test sends on tick, instead of every KeyReloadInterval, and
// report the error of each reload on reloaded. Call it before Start.
func (r *KeyReloader) ReloadByHand() (tick chan<- time.Time, reloaded <-chan error) {
	ticks, done := make(chan time.Time), make(chan error, 10)
	r.after = func(time.Duration) <-chan time.Time { return ticks }
	r.reloaded = done
	return ticks, done
}
