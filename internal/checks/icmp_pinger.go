package checks

// The ICMP pinger: the process's ICMP sockets, which the pings of every ICMP check share.
//
// Every run in the process shares one ICMP socket per address family, opened by the first
// run that needs it and kept open; one goroutine per socket reads the replies and hands each to the
// run waiting for it. A run costs no socket and no goroutine of its own: it sends its pings from the
// probe's goroutine on a ticker and waits for its replies on a channel. Linux offers two kinds of
// socket:
//
//   - An ICMP datagram socket ("unprivileged ping"): any process whose group is inside the sysctl
//     net.ipv4.ping_group_range (which also governs ICMPv6) may open one; the kernel sets the echo
//     identifier to the socket's port and hands the socket only the replies to its own requests.
//   - A raw ICMP socket: needs CAP_NET_RAW and receives a copy of every ICMP packet the host
//     receives. The socket picks a random echo identifier and attaches a BPF filter that lets only
//     echo replies carrying it through, so the other copies die in the kernel.
//
// Requests carry a sequence number from a process-wide 16-bit counter. A reply is matched by its
// sequence number and source address (and, on a raw socket, its identifier) to the request waiting
// for it; its payload must start with the socket's random cookie. A request stops waiting when its
// run ends, so after the counter wraps a late reply cannot be counted for a later run.
//
// For each address family the process decides once which kind to use: the first run that opens a
// socket tries a datagram socket and, only when the kernel refuses it for lack of permission or
// support, a raw one; the kind that opened is used by every later run. A failure that says nothing
// about privilege (no IPv6 on this host, out of file descriptors) decides nothing, so the next run
// tries again in the same order. A socket whose read fails is closed, the runs waiting on it end down
// with the error, and the next run opens a new one.

import (
	"bytes"
	"context"
	"encoding/binary"
	"errors"
	"fmt"
	"io/fs"
	"math"
	"math/rand/v2"
	"net"
	"net/netip"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"golang.org/x/net/bpf"
	"golang.org/x/net/icmp"
	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// icmpNoDeadlineWait bounds a run whose context has no deadline (Probe always sets one): how long
// after the last ping it waits for replies.
const icmpNoDeadlineWait = 2 * time.Second

// Kinds of ICMP socket, as decided by socketChooser.
const (
	icmpUndecided int32 = iota
	icmpDatagram
	icmpRaw
)

// Address families, indexing socketChooser's arrays.
const (
	icmpV4 = iota
	icmpV6
)

// icmpSockets holds the process's ICMP sockets; see the comment at the top of this file.
var icmpSockets socketChooser

// icmpSeq numbers echo requests across the process; requests use its low 16 bits.
var icmpSeq atomic.Uint32

// socketChooser holds a process's ICMP sockets and remembers, for each address family, which kind
// works. The zero value has no socket and has decided nothing. It is safe for concurrent use; runs
// that start before a decision may each try both kinds.
type socketChooser struct {
	mode [2]atomic.Int32 // by family

	mu      sync.Mutex
	sockets [2][3]*icmpSocket // by family and kind (icmpDatagram, icmpRaw); nil or failed until needed
}

// ping pings addr on the shared socket of its family, choosing the kind of socket first if need
// be. Its error is either the context's error (the statistics then hold what the run counted) or a
// sentence for a person saying why nothing more could be measured.
func (sc *socketChooser) ping(ctx context.Context, addr netip.Addr, pp icmpParams) (icmpStats, error) {
	s, err := sc.socketFor(addr.Is6())
	if err != nil {
		return icmpStats{}, err
	}
	return s.ping(ctx, addr, pp)
}

// socketFor returns the open socket of a family, opening one of the chosen kind, or choosing a kind
// as the comment at the top of this file says.
func (sc *socketChooser) socketFor(v6 bool) (*icmpSocket, error) {
	family := icmpV4
	if v6 {
		family = icmpV6
	}
	if mode := sc.mode[family].Load(); mode != icmpUndecided {
		return sc.socket(family, mode)
	}
	s, err := sc.socket(family, icmpDatagram)
	var se *socketError
	if !errors.As(err, &se) {
		sc.mode[family].CompareAndSwap(icmpUndecided, icmpDatagram)
		return s, err
	}
	if !errors.Is(se.err, fs.ErrPermission) && !errors.Is(se.err, syscall.EPROTONOSUPPORT) {
		return nil, err
	}
	datagramErr := se.err
	s, rawErr := sc.socket(family, icmpRaw)
	if errors.As(rawErr, &se) {
		if !errors.Is(se.err, fs.ErrPermission) {
			return nil, rawErr
		}
		if errors.Is(datagramErr, fs.ErrPermission) {
			return nil, errors.New("cannot open an ICMP socket: unprivileged ping is not allowed for this " +
				"process's group (sysctl net.ipv4.ping_group_range) and a raw socket needs CAP_NET_RAW")
		}
		return nil, errors.New("cannot open an ICMP socket: this system has no unprivileged ping " +
			"and a raw socket needs CAP_NET_RAW")
	}
	sc.mode[family].CompareAndSwap(icmpUndecided, icmpRaw)
	return s, rawErr
}

// socket returns the open socket of a family and kind, opening it if there is none or the last one
// failed. Its error is a *socketError.
func (sc *socketChooser) socket(family int, kind int32) (*icmpSocket, error) {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	if s := sc.sockets[family][kind]; s != nil && s.failure() == nil {
		return s, nil
	}
	s, err := openICMPSocket(family == icmpV6, kind == icmpRaw)
	if err != nil {
		return nil, &socketError{err: err}
	}
	sc.sockets[family][kind] = s
	go s.read()
	return s, nil
}

// close closes every socket; runs waiting on them end down. The process's sockets stay open for its
// lifetime; tests close the choosers they make.
func (sc *socketChooser) close() {
	sc.mu.Lock()
	defer sc.mu.Unlock()
	for family := range sc.sockets {
		for kind, s := range sc.sockets[family] {
			if s != nil {
				s.fail(errICMPSocketClosed)
				sc.sockets[family][kind] = nil
			}
		}
	}
}

// String names the kinds of socket chosen, for logs and tests.
func (sc *socketChooser) String() string {
	name := func(mode int32) string {
		switch mode {
		case icmpDatagram:
			return "unprivileged (ICMP datagram socket)"
		case icmpRaw:
			return "raw (privileged ICMP socket)"
		}
		return "undecided"
	}
	return "IPv4 " + name(sc.mode[icmpV4].Load()) + ", IPv6 " + name(sc.mode[icmpV6].Load())
}

// socketError is a socket that could not be opened.
type socketError struct{ err error }

func (e *socketError) Error() string { return "cannot open an ICMP socket: " + errnoWords(e.err) }
func (e *socketError) Unwrap() error { return e.err }

// errICMPSocketClosed is the failure of a socket its chooser closed.
var errICMPSocketClosed = errors.New("closed")

// icmpSocket is one shared ICMP socket and the requests waiting for a reply on it.
type icmpSocket struct {
	conn *icmp.PacketConn
	v6   bool
	raw  bool
	// id is the echo identifier of requests; a datagram socket's kernel replaces it by the socket's port.
	id uint16
	// cookie starts every request's payload; a reply must echo it.
	cookie [8]byte
	// dead is closed when the socket has failed; err then says why.
	dead chan struct{}
	// testSent hears of every echo request sent, in tests (a test signal: nil otherwise), so that a test
	// acts after a run's first ping rather than after a guess at how long it takes.
	testSent chan<- struct{}

	mu      sync.Mutex
	err     error
	waiting map[icmpKey]icmpWaiter
}

// icmpKey identifies a request waiting for its reply.
type icmpKey struct {
	seq  uint16
	addr netip.Addr // without zone
}

// icmpWaiter is a request waiting for its reply: when it was sent and where its run wants the
// round-trip time. The channel has room for every request of the run, so the reader never blocks.
type icmpWaiter struct {
	sent    time.Time
	replies chan<- time.Duration
}

// openICMPSocket opens an ICMP socket of a family and kind. On a raw socket it attaches a BPF filter
// that passes only echo replies carrying the socket's identifier.
func openICMPSocket(v6, raw bool) (*icmpSocket, error) {
	network := "udp4"
	switch {
	case v6 && raw:
		network = "ip6:ipv6-icmp"
	case v6:
		network = "udp6"
	case raw:
		network = "ip4:icmp"
	}
	conn, err := icmp.ListenPacket(network, "")
	if err != nil {
		return nil, err
	}
	s := &icmpSocket{
		conn:    conn,
		v6:      v6,
		raw:     raw,
		id:      uint16(rand.Uint32()),
		dead:    make(chan struct{}),
		waiting: map[icmpKey]icmpWaiter{},
	}
	binary.BigEndian.PutUint64(s.cookie[:], rand.Uint64())
	if raw {
		// Without the filter every ICMP packet of the host reaches the reader, which ignores what is not
		// its own; so a filter that fails to attach costs CPU, not correctness.
		_ = s.attachFilter()
	}
	return s, nil
}

// attachFilter attaches to a raw socket a BPF program that drops every packet but an echo reply
// carrying s.id. An IPv4 raw socket's packets start with the IP header; an IPv6 one's with ICMPv6.
func (s *icmpSocket) attachFilter() error {
	replyType, icmpStart := uint32(ipv4.ICMPTypeEchoReply), bpf.Instruction(bpf.LoadMemShift{Off: 0})
	if s.v6 {
		replyType, icmpStart = uint32(ipv6.ICMPTypeEchoReply), bpf.LoadConstant{Dst: bpf.RegX, Val: 0}
	}
	prog, err := bpf.Assemble([]bpf.Instruction{
		icmpStart,                         // X = where the ICMP message starts
		bpf.LoadIndirect{Off: 0, Size: 1}, // its type
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: replyType, SkipFalse: 3},
		bpf.LoadIndirect{Off: 4, Size: 2}, // its echo identifier
		bpf.JumpIf{Cond: bpf.JumpEqual, Val: uint32(s.id), SkipFalse: 1},
		bpf.RetConstant{Val: math.MaxUint32},
		bpf.RetConstant{Val: 0},
	})
	if err != nil {
		return err
	}
	if s.v6 {
		return s.conn.IPv6PacketConn().SetBPF(prog)
	}
	return s.conn.IPv4PacketConn().SetBPF(prog)
}

// read is the socket's reader: it hands each reply to the request waiting for it, until a read
// fails.
func (s *icmpSocket) read() {
	// Replies to the largest requests (1472 bytes of payload) fit, with an IPv4 header of any length.
	buf := make([]byte, 2048)
	for {
		n, from, err := s.conn.ReadFrom(buf)
		at := time.Now()
		if err != nil {
			s.fail(err)
			return
		}
		s.deliver(buf[:n], sourceAddr(from), at)
	}
}

// deliver matches an ICMP message received at from at time at to the request it answers, if any.
// Duplicates and replies to requests whose run has ended match nothing.
func (s *icmpSocket) deliver(msg []byte, from netip.Addr, at time.Time) {
	replyType := byte(ipv4.ICMPTypeEchoReply)
	if s.v6 {
		replyType = byte(ipv6.ICMPTypeEchoReply)
	}
	if len(msg) < 8+len(s.cookie) || msg[0] != replyType || msg[1] != 0 {
		return
	}
	if s.raw && binary.BigEndian.Uint16(msg[4:]) != s.id {
		return
	}
	if !bytes.Equal(msg[8:8+len(s.cookie)], s.cookie[:]) {
		return
	}
	key := icmpKey{seq: binary.BigEndian.Uint16(msg[6:]), addr: from}
	s.mu.Lock()
	w, ok := s.waiting[key]
	delete(s.waiting, key)
	s.mu.Unlock()
	if ok {
		w.replies <- at.Sub(w.sent)
	}
}

// fail closes the socket after an error and wakes the runs waiting on it; the first error is kept.
func (s *icmpSocket) fail(err error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return
	}
	s.err = err
	s.waiting = nil
	close(s.dead)
	_ = s.conn.Close()
}

// failure is why the socket failed, or nil while it works.
func (s *icmpSocket) failure() error {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.err
}

// failureError is the error of a run that the socket's failure ended.
func (s *icmpSocket) failureError() error {
	err := s.failure()
	if errors.Is(err, errICMPSocketClosed) {
		return errors.New("the ICMP socket was closed")
	}
	return fmt.Errorf("the ICMP socket failed: %s", errnoWords(err))
}

// expect registers a request to addr that is about to be sent with a fresh sequence number, which it
// returns, and whose reply goes to replies.
func (s *icmpSocket) expect(addr netip.Addr, replies chan<- time.Duration) (icmpKey, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	if s.err != nil {
		return icmpKey{}, s.err
	}
	key := icmpKey{addr: addr}
	for {
		// A sequence number still waiting for a reply from addr, 65,536 requests ago, is skipped.
		key.seq = uint16(icmpSeq.Add(1))
		if _, taken := s.waiting[key]; !taken {
			break
		}
	}
	s.waiting[key] = icmpWaiter{sent: time.Now(), replies: replies}
	return key, nil
}

// forget stops waiting for the replies to requests.
func (s *icmpSocket) forget(keys ...icmpKey) {
	s.mu.Lock()
	defer s.mu.Unlock()
	for _, k := range keys {
		delete(s.waiting, k)
	}
}

// ping sends pp.count echo requests to addr, pp.interval apart, and counts the replies. The run ends
// when every ping has been sent and answered, when ctx ends (its error is returned with the counts so
// far), or when the socket fails. A ping that cannot be sent is not counted; the first one's error
// ends the run.
func (s *icmpSocket) ping(ctx context.Context, addr netip.Addr, pp icmpParams) (icmpStats, error) {
	var st icmpStats
	replies := make(chan time.Duration, pp.count)
	keys := make([]icmpKey, 0, pp.count)
	defer func() { s.forget(keys...) }()

	msg := make([]byte, 8+pp.size)
	msg[0] = byte(ipv4.ICMPTypeEcho)
	if s.v6 {
		msg[0] = byte(ipv6.ICMPTypeEchoRequest)
	}
	binary.BigEndian.PutUint16(msg[4:], s.id)
	copy(msg[8:], s.cookie[:])
	for i := 8 + len(s.cookie); i < len(msg); i++ {
		msg[i] = byte(i - 8) // filler as ping(8) sends it: each byte its offset in the payload
	}
	var dst net.Addr = &net.UDPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	if s.raw {
		dst = &net.IPAddr{IP: addr.AsSlice(), Zone: addr.Zone()}
	}
	send := func() error {
		key, err := s.expect(addr.WithZone(""), replies)
		if err != nil {
			return err
		}
		keys = append(keys, key)
		binary.BigEndian.PutUint16(msg[6:], key.seq)
		if !s.v6 {
			// The kernel computes ICMPv6 checksums itself, and those of datagram sockets.
			binary.BigEndian.PutUint16(msg[2:], 0)
			binary.BigEndian.PutUint16(msg[2:], icmpChecksum(msg))
		}
		if _, err := s.conn.WriteTo(msg, dst); err != nil {
			s.forget(key)
			return err
		}
		st.sent++
		if s.testSent != nil {
			select {
			case s.testSent <- struct{}{}:
			default:
			}
		}
		return nil
	}

	if err := send(); err != nil {
		if s.failure() != nil {
			return st, s.failureError()
		}
		return st, fmt.Errorf("cannot ping %s: %s", addr, errnoWords(err))
	}
	var tick <-chan time.Time
	if pp.count > 1 {
		ticker := time.NewTicker(pp.interval)
		defer ticker.Stop()
		tick = ticker.C
	}
	var end <-chan time.Time
	if _, ok := ctx.Deadline(); !ok {
		timer := time.NewTimer(time.Duration(pp.count-1)*pp.interval + icmpNoDeadlineWait)
		defer timer.Stop()
		end = timer.C
	}
	for attempts := 1; attempts < pp.count || st.received < st.sent; {
		select {
		case rtt := <-replies:
			st.add(rtt)
		case <-tick:
			attempts++
			if attempts == pp.count {
				tick = nil
			}
			if err := send(); err != nil && s.failure() != nil {
				return st, s.failureError()
			}
		case <-s.dead:
			return st, s.failureError()
		case <-ctx.Done():
			return st, ctx.Err()
		case <-end:
			return st, nil
		}
	}
	return st, nil
}

// icmpChecksum is the Internet checksum (RFC 1071) of an ICMP message.
func icmpChecksum(b []byte) uint16 {
	var sum uint32
	for i := 0; i+1 < len(b); i += 2 {
		sum += uint32(b[i])<<8 | uint32(b[i+1])
	}
	if len(b)%2 == 1 {
		sum += uint32(b[len(b)-1]) << 8
	}
	for sum>>16 != 0 {
		sum = sum&0xffff + sum>>16
	}
	return ^uint16(sum)
}

// sourceAddr is the address a packet came from, as a datagram or a raw socket reports it.
func sourceAddr(a net.Addr) netip.Addr {
	var ip net.IP
	switch a := a.(type) {
	case *net.UDPAddr:
		ip = a.IP
	case *net.IPAddr:
		ip = a.IP
	}
	addr, _ := netip.AddrFromSlice(ip)
	return addr.Unmap()
}

// errnoWords says what a socket call's error means without the call and addresses around it:
// "permission denied" rather than "socket: permission denied", "network is unreachable" rather than
// "write ip4 0.0.0.0->10.0.0.1: sendto: network is unreachable".
func errnoWords(err error) string {
	var errno syscall.Errno
	if errors.As(err, &errno) {
		return errno.Error()
	}
	return err.Error()
}
