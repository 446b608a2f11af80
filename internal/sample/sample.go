// Package sample generates realistic syslog traffic, deterministically, for
// benchmarks, the load generator and end-to-end tests: RFC 5424 lines of
// about 250 bytes with structured data, and RFC 3164 lines of about 150-250
// bytes in the forms real devices send.
package sample

import (
	"fmt"
	"math/rand/v2"
	"strconv"
	"time"
)

var (
	hosts = []string{"web-01.prod.example.com", "web-02.prod.example.com", "db-master.prod.example.com",
		"cache-3.eu-west-1.example.net", "lb-edge-7", "k8s-node-12.cluster.local", "10.20.30.40", "mail.example.org"}
	apps     = []string{"nginx", "postgres", "sshd", "kubelet", "haproxy", "cron", "systemd", "app-server"}
	msgids   = []string{"ID47", "REQ", "AUTH", "-", "CONN", "QUERY", "HEALTH"}
	messages = []string{
		"GET /api/v1/orders/12345 HTTP/1.1 200 1532 \"-\" \"Mozilla/5.0 (X11; Linux x86_64)\" rt=0.023",
		"connection received: host=10.1.2.3 port=53122 user=app_rw database=orders application_name=api",
		"Accepted publickey for deploy from 192.0.2.17 port 50122 ssh2: ED25519 SHA256:9f2b1c7e0a4d",
		"Successfully probed container readiness: pod default/api-7d9f8c6b5-x2lqz, container api",
		"backend api_servers has no server available! 2 active and 0 backup servers left, 0 sessions active",
		"(root) CMD (/usr/local/bin/backup.sh --incremental --target s3://backups/db > /dev/null 2>&1)",
		"Started Daily apt upgrade and clean activities; next elapse in 23h 59min 12s after this unit",
		"order 812733 processed in 41 ms: 3 items, total 129.90 EUR, payment authorised, warehouse FR-2",
	}
)

// Generator produces lines. It is not safe for concurrent use; give each
// goroutine its own (seeded differently for different traffic).
type Generator struct {
	rng *rand.Rand
	ts  time.Time
	seq int
}

// New returns a generator seeded with seed.
func New(seed uint64) *Generator {
	return &Generator{rng: rand.New(rand.NewPCG(seed, seed^0x9e3779b97f4a7c15)), ts: time.Date(2026, 11, 25, 10, 0, 0, 0, time.UTC)}
}

func (g *Generator) pick(list []string) string { return list[g.rng.IntN(len(list))] }

func (g *Generator) tick() time.Time {
	g.seq++
	g.ts = g.ts.Add(time.Duration(g.rng.IntN(2000)) * time.Microsecond)
	return g.ts
}

// RFC5424 appends one RFC 5424 line (no newline) of about 250 bytes.
func (g *Generator) RFC5424(dst []byte) []byte {
	ts := g.tick()
	pri := g.rng.IntN(24)*8 + g.rng.IntN(8)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, ">1 "...)
	dst = ts.AppendFormat(dst, "2006-01-02T15:04:05.000000Z")
	dst = append(dst, ' ')
	dst = append(dst, g.pick(hosts)...)
	dst = append(dst, ' ')
	dst = append(dst, g.pick(apps)...)
	dst = append(dst, ' ')
	dst = strconv.AppendInt(dst, int64(1000+g.rng.IntN(60000)), 10)
	dst = append(dst, ' ')
	dst = append(dst, g.pick(msgids)...)
	dst = append(dst, ` [meta@32473 seq="`...)
	dst = strconv.AppendInt(dst, int64(g.seq), 10)
	dst = append(dst, `" region="eu-west-1" env="prod"][origin ip="192.0.2.`...)
	dst = strconv.AppendInt(dst, int64(g.rng.IntN(250)+1), 10)
	dst = append(dst, `"] `...)
	dst = append(dst, g.pick(messages)...)
	return dst
}

var months = [...]string{"Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"}

// RFC3164 appends one BSD syslog line (no newline): `<PRI>Mmm dd hh:mm:ss host app[pid]: msg`.
func (g *Generator) RFC3164(dst []byte) []byte {
	ts := g.tick()
	pri := g.rng.IntN(24)*8 + g.rng.IntN(8)
	dst = append(dst, '<')
	dst = strconv.AppendInt(dst, int64(pri), 10)
	dst = append(dst, '>')
	dst = append(dst, months[ts.Month()-1]...)
	dst = append(dst, fmt.Sprintf(" %2d %02d:%02d:%02d ", ts.Day(), ts.Hour(), ts.Minute(), ts.Second())...)
	dst = append(dst, g.pick(hosts)...)
	dst = append(dst, ' ')
	dst = append(dst, g.pick(apps)...)
	dst = append(dst, '[')
	dst = strconv.AppendInt(dst, int64(1000+g.rng.IntN(60000)), 10)
	dst = append(dst, "]: "...)
	dst = append(dst, g.pick(messages)...)
	return dst
}

// Lines returns n newline-terminated lines made by gen.
func Lines(n int, gen func([]byte) []byte) []byte {
	var out []byte
	for range n {
		out = gen(out)
		out = append(out, '\n')
	}
	return out
}
