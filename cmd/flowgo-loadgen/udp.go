package main

import (
	"context"
	"net"
	"time"

	"github.com/flowgo/flowgo"
)

// sendUDP runs a UDP load: one datagram per record, on -c connected sockets.
// UDP has no flow control: what the server cannot take is lost there, and
// only its counters (or the output) tell.
func sendUDP(ctx context.Context, o *options) (result, error) {
	p := newPool(poolSize(o), o.generator(o.seed), flowgo.FramingNoop, "")
	senders := make([]datagramSender, 0, o.conns)
	defer func() {
		for _, s := range senders {
			s.close()
		}
	}()
	raddr, err := net.ResolveUDPAddr("udp", o.addr)
	if err != nil {
		return result{}, err
	}
	for range o.conns {
		c, err := net.DialUDP("udp", nil, raddr)
		if err != nil {
			return result{}, err
		}
		if o.sndbuf > 0 {
			if err := c.SetWriteBuffer(o.sndbuf); err != nil {
				c.Close()
				return result{}, err
			}
		}
		s, err := newDatagramSender(c, o.batch)
		if err != nil {
			return result{}, err
		}
		senders = append(senders, s)
	}
	stop := context.AfterFunc(ctx, func() {
		for _, s := range senders {
			s.stop()
		}
	})
	defer stop()

	return sendAll(ctx, o, p, len(senders), func(i int, pl plan) (records, bytes int64, err error) {
		return writeDatagrams(ctx, senders[i], p, pl, o.batch)
	})
}

// datagramSender sends datagrams on one connected socket.
type datagramSender interface {
	// send sends the first datagrams of bufs, at least one, with one
	// system call, and returns how many it sent.
	send(bufs [][]byte) (int, error)
	// stop makes a send blocked on a full socket buffer return.
	stop()
	close() error
}

// writeDatagrams sends the plan's frames, one datagram each, batch of them
// per system call, and returns what the socket accepted.
func writeDatagrams(ctx context.Context, s datagramSender, p *pool, pl plan, batch int) (records, bytes int64, err error) {
	start := time.Now()
	i := pl.first
	limit := min(batch, pl.maxFrames(p.len()))
	bufs := make([][]byte, batch)
	for !pl.done(records) && ctx.Err() == nil {
		k := min(pl.remaining(records, limit), p.len()-i)
		for j := range k {
			bufs[j] = p.frame(i + j)
		}
		for sent := 0; sent < k; {
			n, err := s.send(bufs[sent:k])
			for j := sent; j < sent+n; j++ {
				bytes += int64(len(bufs[j]))
			}
			records += int64(n)
			sent += n
			if err != nil {
				return records, bytes, err
			}
		}
		if i += k; i == p.len() {
			i = 0
		}
		pl.pace(start, records)
	}
	return records, bytes, nil
}
