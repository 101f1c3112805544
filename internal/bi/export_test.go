package bi

// ScramVerifier is scramVerifier, for the tests of the bi_test package.
var ScramVerifier = scramVerifier

// SetClock gives the enforcer a clock tests move by hand, and its test signals; call before Start.
func (e *Enforcer) SetClock(c Clock) { e.clock = c; e.signals.passed = make(signal[Pass], 100) }

// Passed is the enforcer's signal of a finished pass.
func (e *Enforcer) Passed() <-chan Pass { return e.signals.passed }
