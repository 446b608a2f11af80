package main

import (
	"context"
	"net"
	"sync"
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

	res := result{start: time.Now()}
	ps := plans(o, p, res.start)
	records := make([]int64, len(conns))
	bytes := make([]int64, len(conns))
	errs := make([]error, len(conns))
	var wg sync.WaitGroup
	for i, c := range conns {
		wg.Go(func() {
			var bw batchWriter
			if o.batch > 1 {
				if raddr.IP.To4() != nil {
					bw = ipv4.NewPacketConn(c)
				} else {
					bw = ipv6.NewPacketConn(c)
				}
			}
			records[i], bytes[i], errs[i] = writeDatagrams(ctx, c, bw, p, ps[i], o.batch)
		})
	}
	wg.Wait()
	res.end = time.Now()
	for i := range conns {
		res.records += records[i]
		res.bytes += bytes[i]
	}
	if ctx.Err() != nil {
		return res, errInterrupted
	}
	return res, errorsJoin(errs)
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
