package input

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"strings"
	"syscall"
	"testing"
	"time"
	"unsafe"
)

// The two ways of reading the kernel's drop counter agree, on a socket
// whose tiny receive buffer overflowed.
func TestKernelDropCounterSources(t *testing.T) {
	rx, err := net.ListenUDP("udp4", &net.UDPAddr{IP: net.IPv4(127, 0, 0, 1)})
	if err != nil {
		t.Fatal(err)
	}
	defer rx.Close()
	if _, err := setRecvBuffer(rx, 1); err != nil {
		t.Fatal(err)
	}
	tx, err := net.DialUDP("udp4", nil, rx.LocalAddr().(*net.UDPAddr))
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Close()
	const n = 200
	for range n {
		if _, err := tx.Write(make([]byte, 300)); err != nil {
			t.Fatal(err)
		}
	}
	time.Sleep(20 * time.Millisecond)
	rc, err := rx.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var viaSockopt uint32
	var st syscall.Stat_t
	var sockoptErr, statErr error
	rc.Control(func(fd uintptr) {
		viaSockopt, sockoptErr = socketDrops(int(fd))
		statErr = syscall.Fstat(int(fd), &st)
	})
	if sockoptErr != nil {
		t.Fatalf("SO_MEMINFO: %v", sockoptErr)
	}
	if statErr != nil {
		t.Fatal(statErr)
	}
	viaProc, err := procNetUDPDrops(st.Ino)
	if err != nil {
		t.Fatalf("/proc/net/udp: %v", err)
	}
	// Count what is queued: the rest was dropped.
	queued := 0
	rx.SetReadDeadline(time.Now().Add(50 * time.Millisecond))
	buf := make([]byte, 1000)
	for {
		if _, err := rx.Read(buf); err != nil {
			break
		}
		queued++
	}
	if viaSockopt == 0 || viaSockopt != viaProc || int(viaSockopt)+queued != n {
		t.Errorf("SO_MEMINFO says %d dropped, /proc/net/udp %d, %d queued; want them equal, non-zero, and adding up to %d with the queued",
			viaSockopt, viaProc, queued, n)
	}
}

// A dual-stack socket reports IPv4 senders as IPv4, not as mapped IPv6.
func TestSockaddrOfIPv4SenderOnIPv6Socket(t *testing.T) {
	var sa syscall.RawSockaddrAny
	in6 := (*syscall.RawSockaddrInet6)(unsafe.Pointer(&sa))
	in6.Family = syscall.AF_INET6
	*(*[2]byte)(unsafe.Pointer(&in6.Port)) = [2]byte{0x30, 0x39} // network byte order
	copy(in6.Addr[:], []byte{0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, 10, 1, 2, 3})
	if got := sockaddrAddrPort(&sa).String(); got != "10.1.2.3:12345" {
		t.Errorf("got %s; want 10.1.2.3:12345", got)
	}
}

// The kernel's drop counter is read on Linux only.
func TestUDPKernelDropsAreCounted(t *testing.T) {
	// Every reader blocked in Put, nobody reads the socket. The kernel
	// raises the buffer to its minimum, a few KiB.
	b := startBlockedUDP(t, "udp_recv_buffer = 1")
	g, sink, run, conn, primes := b.gate, b.sink, b.run, b.conn, b.primes
	const n = 500
	payload := bytes.Repeat([]byte("x"), 200)
	for i := range n {
		send(t, conn, fmt.Appendf(nil, "drop test %d %s", i, payload))
	}
	g.release()
	// Wait for the readers to empty the socket, then stop: Run reads the
	// drop counter one last time.
	waitEvents(t, sink, primes)
	time.Sleep(100 * time.Millisecond)
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, _, rejects, dropped := sink.snapshot()
	arrived := 0
	for _, m := range msgs {
		if strings.HasPrefix(m, "drop test ") {
			arrived++
		}
	}
	if dropped[dropKernel] == 0 || arrived+dropped[dropKernel] != n || len(rejects) != 0 {
		t.Errorf("arrived %d + kernel drops %d = %d; want %d sent, with drops (all drops %v)", arrived, dropped[dropKernel], arrived+dropped[dropKernel], n, dropped)
	}
	t.Logf("%d of %d datagrams arrived, %d dropped by the kernel", arrived, n, dropped[dropKernel])
}

// Datagrams queued in the socket are read at shutdown on Linux only: the
// portable reader cannot read past the deadline that stops it.
func TestUDPShutdownHandsOverWhatWasReceived(t *testing.T) {
	b := startBlockedUDP(t, "")
	g, sink, run, conn, primes := b.gate, b.sink, b.run, b.conn, b.primes
	// These wait in the socket's buffer while every reader is blocked.
	const n = 200
	for i := range n {
		send(t, conn, fmt.Appendf(nil, "queued %d", i))
	}
	run.cancel()
	time.Sleep(50 * time.Millisecond)
	g.release()
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, _, _, dropped := sink.snapshot()
	if len(msgs) != primes+n || len(dropped) != 0 {
		t.Errorf("delivered %d records (dropped %v); want the %d primes and the %d queued", len(msgs), dropped, primes, n)
	}
}

// Datagrams still queued when the shutdown drain runs out of time are
// counted as dropped, not closed away unseen. A drain time of zero makes
// every queued datagram such a one.
func TestUDPShutdownCountsWhatTheDrainHadNoTimeFor(t *testing.T) {
	defer func(d time.Duration) { drainTime = d }(drainTime)
	drainTime = 0
	b := startBlockedUDP(t, "")
	const n = 200
	for i := range n {
		send(t, b.conn, fmt.Appendf(nil, "queued %d", i))
	}
	b.run.cancel()
	time.Sleep(50 * time.Millisecond)
	b.gate.release()
	if err := b.run.stop(t); err != nil {
		t.Fatal(err)
	}
	msgs, _, _, dropped := b.sink.snapshot()
	if len(msgs) != b.primes || dropped[dropShutdown] != n || len(dropped) != 1 {
		t.Errorf("delivered %d records, dropped %v; want the %d primes delivered and the %d queued dropped as %q",
			len(msgs), dropped, b.primes, n, dropShutdown)
	}
}

// Readers waiting in recvmmsg on the blocking socket see a stop within the
// socket's receive timeout, and the socket is closed when Run returns: the
// port can be bound again.
func TestUDPIdleReadersStopAndReleaseThePort(t *testing.T) {
	sink := newTestSink()
	run := startUDP(t, testConfig(t, `listen = "127.0.0.1:0"`), sink)
	addr, err := run.in.Addr(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	send(t, dial(t, addr), []byte("before the stop"))
	waitEvents(t, sink, 1)
	time.Sleep(3 * stopPoll) // the readers wait again, through several receive timeouts
	start := time.Now()
	if err := run.stop(t); err != nil {
		t.Fatal(err)
	}
	if took := time.Since(start); took > drainTime {
		t.Errorf("Run took %v to return after the stop; want under %v (the receive timeout is %v)", took, drainTime, stopPoll)
	}
	c, err := net.ListenUDP("udp4", addr)
	if err != nil {
		t.Fatalf("the port is still bound after Run returned: %v", err)
	}
	c.Close()
	if msgs, _, _, _ := sink.snapshot(); len(msgs) != 1 {
		t.Errorf("records %q; want the one sent", msgs)
	}
}

// A reload hands the socket to the input that replaces the stopped one,
// and the kernel's drop counter goes with it: the drops the first input
// counted are not counted again by the second.
func TestUDPKernelDropsAreCountedOnceAcrossAHandover(t *testing.T) {
	b := startBlockedUDP(t, "udp_recv_buffer = 1")
	const n = 500
	payload := bytes.Repeat([]byte("x"), 200)
	for i := range n {
		send(t, b.conn, fmt.Appendf(nil, "drop test %d %s", i, payload))
	}
	// Stopped for a successor, the readers leave what is queued to it.
	b.run.handover()
	b.gate.release()
	if err := b.run.stop(t); err != nil {
		t.Fatal(err)
	}
	next := startUDP(t, testConfig(t, "udp_recv_buffer = 1"), b.sink)
	if next.addr.Port != b.run.addr.Port {
		t.Fatalf("the successor listens on %v, not on the socket handed over (%v)", next.addr, b.run.addr)
	}
	count := func() (arrived, dropped int) {
		msgs, _, _, drops := b.sink.snapshot()
		for _, m := range msgs {
			if strings.HasPrefix(m, "drop test ") {
				arrived++
			}
		}
		return arrived, drops[dropKernel]
	}
	waitFor(10*time.Second, func() bool { a, d := count(); return a+d >= n })
	if err := next.stop(t); err != nil {
		t.Fatal(err)
	}
	arrived, dropped := count()
	if dropped == 0 || arrived+dropped != n {
		t.Errorf("arrived %d + kernel drops %d = %d; want %d sent, with drops", arrived, dropped, arrived+dropped, n)
	}
	t.Logf("%d of %d datagrams arrived, %d dropped by the kernel", arrived, n, dropped)
}
