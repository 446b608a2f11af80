package input

import (
	"errors"
	"log/slog"
	"os"
	"sync"
	"time"
)

// ErrHandover is the cause with which the pipeline stops an input that a
// reload replaces by one listening on the same address. Such an input
// leaves its socket bound for its successor rather than closing it: a UDP
// socket keeps the datagrams queued in it (the successor reads them), and a
// TCP listener keeps the connection attempts in its backlog, so that no
// datagram is refused (the kernel answers "port unreachable" to datagrams
// sent to a port nobody has bound) and no sender is turned away while the
// input is replaced.
var ErrHandover = errors.New("replaced by an input on the same address")

// handoverTTL is how long a socket waits for its successor. The pipeline
// starts it right after; a socket nobody took is closed.
const handoverTTL = 10 * time.Second

// handover holds the sockets left by inputs stopped with ErrHandover, by
// network and configured address. It is process-wide because sockets are:
// a pipeline's reload stops and starts its inputs in one process.
var handover = struct {
	mu sync.Mutex
	m  map[string]*parkedSocket
}{m: map[string]*parkedSocket{}}

type parkedSocket struct {
	f *os.File
	// drops is what the socket's kernel drop counter read when its input
	// last counted it (udp): the successor counts from there.
	drops uint32
	timer *time.Timer
}

func handoverKey(network, address string) string { return network + " " + address }

// parkSocket leaves f (a descriptor of a bound socket) for the successor on
// the same network and address, with the value of its drop counter that
// was counted already.
func parkSocket(network, address string, f *os.File, drops uint32) {
	key := handoverKey(network, address)
	ps := &parkedSocket{f: f, drops: drops}
	handover.mu.Lock()
	if old := handover.m[key]; old != nil {
		old.timer.Stop()
		old.f.Close()
		slog.Warn("a socket left for a successor was replaced before it was taken: what it held is lost", "network", network, "listen", address)
	}
	handover.m[key] = ps
	ps.timer = time.AfterFunc(handoverTTL, func() {
		handover.mu.Lock()
		if handover.m[key] == ps {
			delete(handover.m, key)
			ps.f.Close()
			// What it held (a TCP backlog, queued datagrams) goes with it.
			slog.Warn("no input took over the socket a replaced input left: closed, what it held is lost", "network", network, "listen", address, "after", handoverTTL)
		}
		handover.mu.Unlock()
	})
	handover.mu.Unlock()
}

// adoptSocket returns the socket a predecessor left on network and
// address, or nil, and the drops it counted (see parkSocket). The caller
// owns the socket.
func adoptSocket(network, address string) (*os.File, uint32) {
	key := handoverKey(network, address)
	handover.mu.Lock()
	defer handover.mu.Unlock()
	ps := handover.m[key]
	if ps == nil {
		return nil, 0
	}
	delete(handover.m, key)
	ps.timer.Stop()
	return ps.f, ps.drops
}
