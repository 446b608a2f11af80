package main

import (
	"context"
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// batchWriter sends several datagrams with one system call (sendmmsg on
// Linux). ipv4.PacketConn and ipv6.PacketConn both are one.
type batchWriter interface {
	WriteBatch(ms []ipv4.Message, flags int) (int, error)
}

// sendUDP runs a UDP load: one datagram per record, on -c connected sockets.
// UDP has no flow control: what the server cannot take is lost there, and
// only its counters (or the output) tell.
func sendUDP(ctx context.Context, o *options) (result, error) {
	p := newPool(poolSize(o), o.generator(o.seed), framingNone)
	conns := make([]*net.UDPConn, 0, o.conns)
	defer func() {
		for _, c := range conns {
			c.Close()
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
		conns = append(conns, c)
		if o.sndbuf > 0 {
			if err := c.SetWriteBuffer(o.sndbuf); err != nil {
				return result{}, err
			}
		}
	}
	stop := context.AfterFunc(ctx, func() {
		for _, c := range conns {
			c.SetWriteDeadline(time.Now())
		}
	})
	defer stop()

	return sendAll(ctx, o, p, len(conns), func(i int, pl plan) (records, bytes int64, err error) {
		c := conns[i]
		var bw batchWriter
		if o.batch > 1 {
			if raddr.IP.To4() != nil {
				bw = ipv4.NewPacketConn(c)
			} else {
				bw = ipv6.NewPacketConn(c)
			}
		}
		return writeDatagrams(ctx, c, bw, p, pl, o.batch)
	})
}

// writeDatagrams sends the plan's frames on c, one datagram each, batch of
// them per system call when bw is set, and returns what the socket accepted.
func writeDatagrams(ctx context.Context, c *net.UDPConn, bw batchWriter, p *pool, pl plan, batch int) (records, bytes int64, err error) {
	start := time.Now()
	i := pl.first
	limit := min(batch, pl.maxFrames(p.len()))
	msgs := make([]ipv4.Message, batch)
	bufs := make([][]byte, batch)
	for j := range msgs {
		msgs[j].Buffers = bufs[j : j+1]
	}
	for !pl.done(records) && ctx.Err() == nil {
		k := min(pl.remaining(records, limit), p.len()-i)
		if bw == nil {
			n, err := c.Write(p.frame(i))
			if err != nil {
				return records, bytes, err
			}
			records++
			bytes += int64(n)
		} else {
			for j := range k {
				bufs[j] = p.frame(i + j)
			}
			for sent := 0; sent < k; {
				n, err := bw.WriteBatch(msgs[sent:k], 0)
				for j := sent; j < sent+n; j++ {
					bytes += int64(len(bufs[j]))
				}
				records += int64(n)
				sent += n
				if err != nil {
					return records, bytes, err
				}
			}
			i += k - 1
		}
		if i++; i == p.len() {
			i = 0
		}
		pl.pace(start, records)
	}
	return records, bytes, nil
}
