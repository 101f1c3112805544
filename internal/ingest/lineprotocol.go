package ingest

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"math"
	"slices"
	"strconv"
	"time"
	"unicode/utf8"
)

// maxNamesPerLineByte bounds the bytes of series names a line may produce, per byte of the line. A
// line's measurement is copied into the name of each of its fields, so without a bound a 1000-byte
// measurement followed by thousands of short fields would turn a 1 MB body into 150 MB of names. Lines
// whose measurement is at most 64 bytes never reach the bound.
const maxNamesPerLineByte = 16

// ParseLineProtocol decodes an InfluxDB line protocol body (v1 /write and v2 /api/v2/write) into series.
// precision is the timestamp unit: "ns" (also "n" and ""), "us" (also "u"), "ms", "s", and for v1 also
// "m" and "h". Timestamps are converted to milliseconds rounding toward negative infinity (-1ns is -1ms);
// now stamps lines without a timestamp.
//
// Each numeric field of a line becomes its own series named "<measurement>.<field>" (exactly
// "<measurement>" when the field key is "value"), with the line's tags as labels; the tag "host", when
// present, also sets Series.Host and stays in Labels. Integers (12i), unsigned integers (12u), floats
// and booleans (1 and 0) are stored as float64, so integers beyond 2^53 lose precision. Series with the
// same name and labels are merged, in order of first appearance. Series decoded from lines with the
// same tag set share one Labels map, which keeps the work proportional to the body: callers must treat
// Labels as read-only.
//
// What cannot be stored is reported as a Rejection and the rest of the body is still decoded. Series is
// the 0-based number of the physical line the point starts on; Reason names that line counting from 1,
// as editors do. A malformed line (no measurement or fields, a missing '=', repeated tag or field keys,
// an unterminated string, a bad timestamp, names that are not UTF-8 or hold NUL, a measurement too
// long for its number of fields) is refused whole with Sample -1. A field whose value is a string, a
// malformed or out-of-range number, NaN or infinity, or whose series name would pass 1024 characters,
// is refused alone with Sample set to its 0-based index in the line; the line's other fields are kept.
//
// The only error is an unknown precision.
func ParseLineProtocol(body []byte, precision string, now time.Time) ([]Series, []Rejection, error) {
	prec, ok := lineProtocolPrecision(precision)
	if !ok {
		return nil, nil, fmt.Errorf("parse line protocol: unknown precision %q (want ns, us, ms, s, m or h)", precision)
	}
	p := lpParser{
		body:      body,
		prec:      prec,
		nowMs:     now.UnixMilli(),
		seriesIdx: make(map[string]int),
		tagsetIdx: make(map[string]uint32),
	}
	p.run()
	return p.series, p.rejections, nil
}

// lpPrecision converts a timestamp to milliseconds: multiply by mul, or divide by div.
type lpPrecision struct{ mul, div int64 }

func lineProtocolPrecision(precision string) (lpPrecision, bool) {
	switch precision {
	case "", "n", "ns":
		return lpPrecision{mul: 1, div: 1_000_000}, true
	case "u", "us":
		return lpPrecision{mul: 1, div: 1_000}, true
	case "ms":
		return lpPrecision{mul: 1, div: 1}, true
	case "s":
		return lpPrecision{mul: 1_000, div: 1}, true
	case "m":
		return lpPrecision{mul: 60_000, div: 1}, true
	case "h":
		return lpPrecision{mul: 3_600_000, div: 1}, true
	}
	return lpPrecision{}, false
}

// toMillis converts t, rounding toward negative infinity; ok is false when the result overflows int64.
func (p lpPrecision) toMillis(t int64) (ms int64, ok bool) {
	if p.div > 1 {
		q := t / p.div
		if t%p.div < 0 {
			q--
		}
		return q, true
	}
	if t > math.MaxInt64/p.mul || t < math.MinInt64/p.mul {
		return 0, false
	}
	return t * p.mul, true
}

// lpTag is one tag of the line being parsed, unescaped. Both slices point into the body or into
// lpParser.scratch and are only valid until the next line.
type lpTag struct{ key, value []byte }

// lpField is one field of the line being parsed: its value, or why it cannot be stored.
type lpField struct {
	key    []byte
	value  float64
	reason string
}

// lpTagset is a distinct tag set of the body and what its series share.
type lpTagset struct {
	labels map[string]string
	host   string
}

// lpParser holds the state of one ParseLineProtocol call. Everything per line is reused across lines,
// so a line allocates only when it brings a new tag set, a new series or a rejection.
type lpParser struct {
	body  []byte
	prec  lpPrecision
	nowMs int64

	series     []Series
	rejections []Rejection
	// seriesIdx maps a tag set id (4 bytes) followed by a series name to the series' index.
	seriesIdx map[string]int
	// tagsetIdx maps a tag set, encoded by appendTagsetKey, to its index in tagsets.
	tagsetIdx map[string]uint32
	tagsets   []lpTagset

	line    int    // 0-based number of the physical line at the parse position
	problem string // why the current line is refused; empty while it is fine

	scratch   []byte // unescaped names of the current line
	key       []byte // map key being built
	tags      []lpTag
	fields    []lpField
	fieldKeys [][]byte
}

// run parses the body line by line.
func (p *lpParser) run() {
	b := p.body
	i := 0
	for i < len(b) {
		for i < len(b) && (b[i] == ' ' || b[i] == '\t') {
			i++
		}
		switch {
		case p.eol(i):
			i = p.nextLine(i)
		case b[i] == '#':
			i = p.nextLine(p.skipToNewline(i))
		default:
			i = p.parseLine(i)
		}
	}
}

// eol reports whether i is at the end of a line: "\n", "\r\n", a final "\r", or the end of the body.
func (p *lpParser) eol(i int) bool {
	b := p.body
	if i >= len(b) {
		return true
	}
	switch b[i] {
	case '\n':
		return true
	case '\r':
		return i+1 == len(b) || b[i+1] == '\n'
	}
	return false
}

// nextLine steps over the line end at i and counts the line.
func (p *lpParser) nextLine(i int) int {
	b := p.body
	if i < len(b) && b[i] == '\r' {
		i++
	}
	if i < len(b) && b[i] == '\n' {
		i++
		p.line++
	}
	return i
}

// skipToNewline returns the index of the next '\n' from i, or the end of the body.
func (p *lpParser) skipToNewline(i int) int {
	if j := bytes.IndexByte(p.body[i:], '\n'); j >= 0 {
		return i + j
	}
	return len(p.body)
}

// fail records why the current line is refused; the first problem found is the one reported.
func (p *lpParser) fail(format string, args ...any) {
	if p.problem == "" {
		p.problem = fmt.Sprintf(format, args...)
	}
}

// parseLine parses the line that starts at i and returns where the next one starts. A problem does not
// stop the scan: the line is read to its true end (past newlines in string values) before it is refused.
func (p *lpParser) parseLine(i int) int {
	b := p.body
	lineNo := p.line
	p.problem = ""
	p.scratch, p.tags, p.fields = p.scratch[:0], p.tags[:0], p.fields[:0]

	// Measurement and tags, up to the first unescaped space.
	headStart := i
	var meas []byte
	meas, i, _ = p.scanName(i, scanMeasurement)
	if len(meas) == 0 {
		p.fail("missing measurement")
	}
	for i < len(b) && b[i] == ',' {
		var k, v []byte
		var bareEquals bool
		k, i, _ = p.scanName(i+1, scanKey)
		if len(k) == 0 {
			p.fail("empty tag key")
		}
		if i >= len(b) || b[i] != '=' {
			p.fail("tag %s has no '='", lpQuote(k))
			continue
		}
		v, i, bareEquals = p.scanName(i+1, scanTagValue)
		switch {
		case len(v) == 0:
			p.fail("tag %s has an empty value", lpQuote(k))
		case bareEquals:
			p.fail("tag %s has an unescaped '=' in its value", lpQuote(k))
		}
		p.tags = append(p.tags, lpTag{key: k, value: v})
	}
	if head := b[headStart:i]; !lpValidName(head) {
		p.fail("measurement or tags are not valid UTF-8 or hold a NUL byte")
	}
	for i < len(b) && b[i] == ' ' {
		i++
	}

	// Fields.
	if p.eol(i) {
		p.fail("missing fields")
	} else {
		var unterminated bool
		if i, unterminated = p.scanFields(i); unterminated {
			p.fail("unterminated string field value")
			p.refuse(lineNo)
			return p.nextLine(i)
		}
	}

	// Timestamp.
	ts := p.nowMs
	if i < len(b) && b[i] == ' ' {
		for i < len(b) && b[i] == ' ' {
			i++
		}
		if !p.eol(i) {
			start := i
			for i < len(b) && b[i] != ' ' && !p.eol(i) {
				i++
			}
			ts = p.timestamp(b[start:i])
			for i < len(b) && b[i] == ' ' {
				i++
			}
		}
	}
	if !p.eol(i) {
		p.fail("unexpected text after the timestamp")
		i = p.skipToNewline(i)
	}

	if p.problem == "" {
		p.checkRepeats()
	}
	if p.problem == "" {
		names := len(p.fields) * (len(meas) + 1)
		for _, f := range p.fields {
			names += len(f.key)
		}
		if names > maxNamesPerLineByte*(i-headStart) {
			p.fail("the measurement is too long for %d fields (their names would take %d bytes)", len(p.fields), names)
		}
	}
	if p.problem != "" {
		p.refuse(lineNo)
	} else {
		p.emit(lineNo, meas, ts)
	}
	return p.nextLine(i)
}

// scanFields scans the field set that starts at i into p.fields and returns where it ends: at a space,
// or at the end of the line. unterminated is true when a string value never closes; i is then the first
// newline after its opening quote, where parsing resumes.
func (p *lpParser) scanFields(i int) (end int, unterminated bool) {
	b := p.body
	for {
		var k []byte
		k, i, _ = p.scanName(i, scanKey)
		if len(k) == 0 {
			p.fail("empty field key")
		}
		if i >= len(b) || b[i] != '=' {
			p.fail("field %s has no '='", lpQuote(k))
			if i < len(b) && b[i] == ',' {
				i++
				continue
			}
			return i, false
		}
		i++
		f := lpField{key: k}
		if i < len(b) && b[i] == '"' {
			end, newlines, ok := lpScanString(b, i+1)
			if !ok {
				return p.skipToNewline(i), true
			}
			p.line += newlines
			i = end
			f.reason = "string fields are not stored"
			if i < len(b) && b[i] != ',' && b[i] != ' ' && !p.eol(i) {
				p.fail("field %s has text after its closing quote", lpQuote(k))
				for i < len(b) && b[i] != ',' && b[i] != ' ' && !p.eol(i) {
					i++
				}
			}
		} else {
			start := i
			for i < len(b) {
				if c := b[i]; c == ',' || c == ' ' || c == '\n' || (c == '\r' && p.eol(i)) {
					break
				}
				i++
			}
			if i == start {
				p.fail("field %s has no value", lpQuote(k))
			} else {
				f.value, f.reason = lpFieldValue(b[start:i])
			}
		}
		p.fields = append(p.fields, f)
		if i < len(b) && b[i] == ',' {
			i++
			continue
		}
		return i, false
	}
}

// timestamp converts a timestamp token to milliseconds, or records why it cannot.
func (p *lpParser) timestamp(tok []byte) int64 {
	t, reason := lpInteger(tok)
	if reason != "" {
		p.fail("invalid timestamp %s", lpQuote(tok))
		return 0
	}
	ms, ok := p.prec.toMillis(t)
	if !ok {
		p.fail("timestamp %s is out of range", lpQuote(tok))
		return 0
	}
	return ms
}

// checkRepeats refuses the line when a tag key or a field key appears twice. It leaves p.tags sorted.
func (p *lpParser) checkRepeats() {
	tags := p.tags
	if len(tags) > 16 {
		slices.SortFunc(tags, func(a, b lpTag) int { return bytes.Compare(a.key, b.key) })
	} else {
		for i := 1; i < len(tags); i++ {
			for j := i; j > 0 && bytes.Compare(tags[j-1].key, tags[j].key) > 0; j-- {
				tags[j-1], tags[j] = tags[j], tags[j-1]
			}
		}
	}
	for i := 1; i < len(tags); i++ {
		if bytes.Equal(tags[i-1].key, tags[i].key) {
			p.fail("tag %s is repeated", lpQuote(tags[i].key))
			return
		}
	}

	fields := p.fields
	if len(fields) <= 16 {
		for i := 1; i < len(fields); i++ {
			for j := 0; j < i; j++ {
				if bytes.Equal(fields[i].key, fields[j].key) {
					p.fail("field %s is repeated", lpQuote(fields[i].key))
					return
				}
			}
		}
		return
	}
	keys := p.fieldKeys[:0]
	for _, f := range fields {
		keys = append(keys, f.key)
	}
	slices.SortFunc(keys, bytes.Compare)
	p.fieldKeys = keys
	for i := 1; i < len(keys); i++ {
		if bytes.Equal(keys[i-1], keys[i]) {
			p.fail("field %s is repeated", lpQuote(keys[i]))
			return
		}
	}
}

// refuse reports the whole current line.
func (p *lpParser) refuse(lineNo int) {
	p.rejections = append(p.rejections, Rejection{
		Series: lineNo,
		Sample: -1,
		Reason: fmt.Sprintf("line %d: %s", lineNo+1, p.problem),
	})
}

// emit adds a sample for each storable field of a well-formed line and a rejection for each other.
func (p *lpParser) emit(lineNo int, meas []byte, ts int64) {
	set := p.tagset()
	measRunes := -1
	for n := range p.fields {
		f := &p.fields[n]
		if f.reason == "" && !lpValidName(f.key) {
			f.reason = "field key is not valid UTF-8 or holds a NUL byte"
		}
		isValue := string(f.key) == "value"
		if f.reason == "" && len(meas)+1+len(f.key) > MaxMetricNameChars {
			if measRunes < 0 {
				measRunes = utf8.RuneCount(meas)
			}
			runes := measRunes
			if !isValue {
				runes += 1 + utf8.RuneCount(f.key)
			}
			if runes > MaxMetricNameChars {
				f.reason = fmt.Sprintf("series name is longer than %d characters", MaxMetricNameChars)
			}
		}
		if f.reason != "" {
			p.rejections = append(p.rejections, Rejection{
				Series: lineNo,
				Sample: n,
				Reason: fmt.Sprintf("line %d field %s: %s", lineNo+1, lpQuote(f.key), f.reason),
			})
			continue
		}

		p.key = binary.LittleEndian.AppendUint32(p.key[:0], set)
		p.key = append(p.key, meas...)
		if !isValue {
			p.key = append(p.key, '.')
			p.key = append(p.key, f.key...)
		}
		idx, ok := p.seriesIdx[string(p.key)]
		if !ok {
			key := string(p.key)
			idx = len(p.series)
			p.seriesIdx[key] = idx
			shared := &p.tagsets[set]
			p.series = append(p.series, Series{Name: key[4:], Labels: shared.labels, Host: shared.host})
		}
		p.series[idx].Samples = append(p.series[idx].Samples, Sample{TimeMs: ts, Value: f.value})
	}
}

// tagset returns the id of the current line's tag set (p.tags, sorted), adding it when it is new.
func (p *lpParser) tagset() uint32 {
	p.key = p.key[:0]
	for _, t := range p.tags {
		p.key = binary.AppendUvarint(p.key, uint64(len(t.key)))
		p.key = append(p.key, t.key...)
		p.key = binary.AppendUvarint(p.key, uint64(len(t.value)))
		p.key = append(p.key, t.value...)
	}
	if id, ok := p.tagsetIdx[string(p.key)]; ok {
		return id
	}
	set := lpTagset{labels: make(map[string]string, len(p.tags))}
	for _, t := range p.tags {
		v := string(t.value)
		set.labels[string(t.key)] = v
		if string(t.key) == "host" {
			set.host = v
		}
	}
	id := uint32(len(p.tagsets))
	p.tagsets = append(p.tagsets, set)
	p.tagsetIdx[string(p.key)] = id
	return id
}

// lpScanMode says which delimiters end a name and which characters a backslash escapes in it.
type lpScanMode uint8

const (
	// scanMeasurement ends at ',' or ' '; "\," and "\ " are escapes, '=' is an ordinary character.
	scanMeasurement lpScanMode = iota
	// scanTagValue ends at ',' or ' '; "\,", "\=" and "\ " are escapes; a bare '=' is reported.
	scanTagValue
	// scanKey (tag and field keys) ends at ',', '=' or ' '; "\,", "\=" and "\ " are escapes.
	scanKey
)

// lpDelim marks the bytes scanName must look at; every other byte is part of the name.
var lpDelim = [256]bool{'\\': true, ',': true, '=': true, ' ': true, '\n': true, '\r': true}

// lpEscapable reports whether a backslash before c is an escape in mode; before anything else a
// backslash is literal (and never escapes a line end).
func lpEscapable(c byte, mode lpScanMode) bool {
	return c == ',' || c == ' ' || (c == '=' && mode != scanMeasurement)
}

// scanName scans a name from i to its first unescaped delimiter or the end of the line and returns it
// unescaped, the index of the delimiter, and whether a tag value held a bare '='.
func (p *lpParser) scanName(i int, mode lpScanMode) (name []byte, end int, bareEquals bool) {
	b := p.body
	start := i
	escaped := false
scan:
	for i < len(b) {
		c := b[i]
		if !lpDelim[c] {
			i++
			continue
		}
		switch c {
		case '\\':
			if i+1 < len(b) && lpEscapable(b[i+1], mode) {
				escaped = true
				i += 2
			} else {
				i++
			}
		case '=':
			if mode == scanKey {
				break scan
			}
			bareEquals = mode == scanTagValue
			i++
		case '\r':
			if i+1 < len(b) && b[i+1] != '\n' {
				i++ // a carriage return that does not end the line is data
			} else {
				break scan
			}
		default: // ',', ' ', '\n'
			break scan
		}
	}
	name = b[start:i]
	if escaped {
		name = p.unescape(name, mode)
	}
	return name, i, bareEquals
}

// unescape copies name into p.scratch without its escaping backslashes.
func (p *lpParser) unescape(name []byte, mode lpScanMode) []byte {
	start := len(p.scratch)
	for i := 0; i < len(name); i++ {
		c := name[i]
		if c == '\\' && i+1 < len(name) && lpEscapable(name[i+1], mode) {
			i++
			c = name[i]
		}
		p.scratch = append(p.scratch, c)
	}
	return p.scratch[start:len(p.scratch):len(p.scratch)]
}

// lpScanString scans a string field value whose opening quote is at i-1, where "\"" and "\\" are escapes
// and newlines are part of the value. It returns the index after the closing quote and the number of
// newlines inside; ok is false when the body ends first.
func lpScanString(b []byte, i int) (end, newlines int, ok bool) {
	for i < len(b) {
		switch b[i] {
		case '\\':
			if i+1 < len(b) && (b[i+1] == '"' || b[i+1] == '\\') {
				i++
			}
		case '"':
			return i + 1, newlines, true
		case '\n':
			newlines++
		}
		i++
	}
	return i, newlines, false
}

// lpValidName reports whether b can be stored in PostgreSQL text and jsonb: valid UTF-8 without NUL.
func lpValidName(b []byte) bool {
	return bytes.IndexByte(b, 0) < 0 && utf8.Valid(b)
}

// lpQuote quotes a name for a rejection reason, cut to a readable length.
func lpQuote(b []byte) string {
	const max = 64
	if len(b) > max {
		return strconv.Quote(string(b[:max])) + "..."
	}
	return strconv.Quote(string(b))
}

// lpFieldValue parses an unquoted field value: a float, an integer (12i), an unsigned integer (12u)
// or a boolean. reason says why it cannot be stored.
func lpFieldValue(v []byte) (value float64, reason string) {
	switch string(v) {
	case "t", "T", "true", "True", "TRUE":
		return 1, ""
	case "f", "F", "false", "False", "FALSE":
		return 0, ""
	}
	switch v[len(v)-1] {
	case 'i':
		n, reason := lpInteger(v[:len(v)-1])
		if reason != "" {
			return 0, reason + " integer " + lpQuote(v)
		}
		return float64(n), ""
	case 'u':
		n, status := lpDigits(v[:len(v)-1])
		switch status {
		case lpDigitsSyntax:
			return 0, "invalid unsigned integer " + lpQuote(v)
		case lpDigitsOverflow:
			return 0, "out of range unsigned integer " + lpQuote(v)
		}
		return float64(n), ""
	}
	if f, ok := lpSimpleFloat(v); ok {
		return f, ""
	}
	f, err := strconv.ParseFloat(string(v), 64)
	switch {
	case errors.Is(err, strconv.ErrRange):
		return 0, "out of range number " + lpQuote(v)
	case err != nil:
		return 0, "invalid value " + lpQuote(v)
	case math.IsNaN(f) || math.IsInf(f, 0):
		return 0, "NaN and infinity are not allowed in line protocol"
	}
	return f, ""
}

// Outcomes of lpDigits.
const (
	lpDigitsOK = iota
	lpDigitsSyntax
	lpDigitsOverflow
)

// lpDigits parses a non-empty run of decimal digits as a uint64.
func lpDigits(b []byte) (uint64, int) {
	if len(b) == 0 {
		return 0, lpDigitsSyntax
	}
	var n uint64
	for _, c := range b {
		if c < '0' || c > '9' {
			return 0, lpDigitsSyntax
		}
		d := uint64(c - '0')
		if n > math.MaxUint64/10 || (n == math.MaxUint64/10 && d > math.MaxUint64%10) {
			return 0, lpDigitsOverflow
		}
		n = n*10 + d
	}
	return n, lpDigitsOK
}

// lpInteger parses an optionally signed decimal int64; reason is "invalid" or "out of range".
func lpInteger(b []byte) (n int64, reason string) {
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		b = b[1:]
	}
	u, status := lpDigits(b)
	switch {
	case status == lpDigitsSyntax:
		return 0, "invalid"
	case status == lpDigitsOverflow, !neg && u > math.MaxInt64, neg && u > 1<<63:
		return 0, "out of range"
	case neg:
		return int64(-u), ""
	}
	return int64(u), ""
}

// lpPow10 holds the powers of ten a float64 represents exactly.
var lpPow10 = [...]float64{1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13,
	1e14, 1e15, 1e16, 1e17, 1e18, 1e19, 1e20, 1e21, 1e22}

// lpSimpleFloat parses the common shape [+-]digits[.digits] without converting to a string. When the
// digits fit in 53 bits one division by an exact power of ten rounds correctly, so the result equals
// strconv.ParseFloat's; ok is false for every other input, which then goes to strconv.ParseFloat.
func lpSimpleFloat(b []byte) (f float64, ok bool) {
	i := 0
	neg := false
	if len(b) > 0 && (b[0] == '-' || b[0] == '+') {
		neg = b[0] == '-'
		i++
	}
	var mant uint64
	digits, frac := 0, 0
	dot := false
	for ; i < len(b); i++ {
		switch c := b[i]; {
		case c >= '0' && c <= '9':
			if digits == 19 {
				return 0, false
			}
			mant = mant*10 + uint64(c-'0')
			digits++
			if dot {
				frac++
			}
		case c == '.' && !dot:
			dot = true
		default:
			return 0, false
		}
	}
	if digits == 0 || mant > 1<<53 {
		return 0, false
	}
	f = float64(mant) / lpPow10[frac]
	if neg {
		f = -f
	}
	return f, true
}
