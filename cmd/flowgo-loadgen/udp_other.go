//go:build !linux

package main

import (
	"net"
	"time"

	"golang.org/x/net/ipv4"
	"golang.org/x/net/ipv6"
)

// netSender sends through the net package: one Write per datagram, or
// ipv4/ipv6.PacketConn.WriteBatch (sendmmsg where the system has it).
type netSender struct {
	c  *net.UDPConn
	bw interface {
		WriteBatch([]ipv4.Message, int) (int, error)
	}
	msgs []ipv4.Message
}

func newDatagramSender(c *net.UDPConn, batch int) (datagramSender, error) {
	s := &netSender{c: c}
	if batch > 1 {
		if c.RemoteAddr().(*net.UDPAddr).IP.To4() != nil {
			s.bw = ipv4.NewPacketConn(c)
		} else {
			s.bw = ipv6.NewPacketConn(c)
		}
		s.msgs = make([]ipv4.Message, batch)
	}
	return s, nil
}

func (s *netSender) send(bufs [][]byte) (int, error) {
	if s.bw == nil || len(bufs) == 1 {
		if _, err := s.c.Write(bufs[0]); err != nil {
			return 0, err
		}
		return 1, nil
	}
	for j := range bufs {
		s.msgs[j].Buffers = bufs[j : j+1]
	}
	return s.bw.WriteBatch(s.msgs[:len(bufs)], 0)
}

func (s *netSender) stop()        { s.c.SetWriteDeadline(time.Now()) }
func (s *netSender) close() error { return s.c.Close() }
