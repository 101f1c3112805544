//go:build !race

package ingest

// raceDetector is true when the tests run under -race, whose instrumentation allocates more: allocation
// bounds allow for it.
const raceDetector = false
