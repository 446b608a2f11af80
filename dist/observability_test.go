package dist

import (
	"bytes"
	"encoding/json"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	dto "github.com/prometheus/client_model/go"
	"github.com/prometheus/common/expfmt"
	"github.com/prometheus/common/model"
)

// liveMetrics runs flowgo with every kind of metric family present (udp
// and tcp inputs, file outputs, a memory queue and a disk queue, one
// pipeline each), sends it a record and a bad frame, and returns /metrics
// as text.
func liveMetrics(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	udp := fmt.Sprintf("127.0.0.1:%d", freePort(t, "udp"))
	tcpA := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	tcpB := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	metrics := fmt.Sprintf("[metrics]\nlisten = %q\n", metricsAddr)
	mem := writeFile(t, dir, "mem.toml", fmt.Sprintf(`[[input]]
type = "udp"
listen = %q
format = "auto"
[[input]]
type = "tcp"
listen = %q
format = "auto"
[output]
type = "file"
file_path = %q
format = "rfc5424"
`, udp, tcpA, filepath.Join(dir, "mem.log"))+metrics)
	disk := writeFile(t, dir, "disk.toml", fmt.Sprintf(`[input]
type = "tcp"
listen = %q
format = "auto"
[output]
type = "file"
file_path = %q
format = "gelf"
[queue]
type = "disk"
path = %q
`, tcpB, filepath.Join(dir, "disk.log"), filepath.Join(dir, "queue"))+metrics)
	p := start(t, binary(t), "run", "-c", mem, "-c", disk)
	waitListening(t, p, tcpA)
	waitListening(t, p, tcpB)
	sendTCP(t, tcpA, []string{"<14>1 2026-01-02T03:04:05Z host app 1 - - a record\n", "not syslog\n"})
	sendTCP(t, tcpB, []string{"<14>1 2026-01-02T03:04:05Z host app 1 - - a record\n"})
	var body string
	waitFor(t, 15*time.Second, "both records delivered", func() bool {
		body = get(t, "http://"+metricsAddr+"/metrics", 200)
		return strings.Contains(body, `flowgo_output_records_total{output="file:`+filepath.Join(dir, "mem.log")+`",pipeline="mem"} 1`) &&
			strings.Contains(body, `flowgo_output_records_total{output="file:`+filepath.Join(dir, "disk.log")+`",pipeline="disk"} 1`)
	})
	return body
}

// families parses Prometheus text exposition.
func families(t *testing.T, text string) map[string]*dto.MetricFamily {
	t.Helper()
	parser := expfmt.NewTextParser(model.UTF8Validation)
	fams, err := parser.TextToMetricFamilies(strings.NewReader(text))
	if err != nil {
		t.Fatalf("/metrics is not valid Prometheus text: %v", err)
	}
	return fams
}

var metricName = regexp.MustCompile(`\b((?:flowgo|go|process)_[a-z0-9_]+)\b`)

// family returns the family a series name in a query belongs to: a
// histogram's _bucket, _sum and _count series are its family's.
func family(fams map[string]*dto.MetricFamily, name string) (string, bool) {
	if _, ok := fams[name]; ok {
		return name, true
	}
	for _, suffix := range []string{"_bucket", "_sum", "_count"} {
		if base, ok := strings.CutSuffix(name, suffix); ok {
			if f, ok := fams[base]; ok && (f.GetType() == dto.MetricType_HISTOGRAM || f.GetType() == dto.MetricType_SUMMARY) {
				return base, true
			}
		}
	}
	return "", false
}

// dashboardExprs returns every query of the Grafana dashboard, by panel.
func dashboardExprs(t *testing.T) map[string][]string {
	t.Helper()
	data, err := os.ReadFile("grafana/flowgo.json")
	if err != nil {
		t.Fatal(err)
	}
	var d struct {
		UID, Title    string
		SchemaVersion int
		Templating    struct{ List []struct{ Name, Type string } }
		Panels        []struct {
			ID         int
			Type       string
			Title      string
			Datasource struct{ UID string }
			GridPos    struct{ H, W, X, Y int }
			Targets    []struct{ RefID, Expr string }
		}
	}
	dec := json.NewDecoder(bytes.NewReader(data))
	if err := dec.Decode(&d); err != nil {
		t.Fatalf("grafana/flowgo.json: %v", err)
	}
	if d.UID == "" || d.Title == "" || d.SchemaVersion < 30 {
		t.Errorf("dashboard uid %q, title %q, schemaVersion %d; want both set and a current schema", d.UID, d.Title, d.SchemaVersion)
	}
	var vars []string
	for _, v := range d.Templating.List {
		vars = append(vars, v.Type+":"+v.Name)
	}
	for _, want := range []string{"datasource:datasource", "query:instance", "query:pipeline"} {
		if !slices.Contains(vars, want) {
			t.Errorf("dashboard variables %v lack %s", vars, want)
		}
	}
	out := map[string][]string{}
	ids := map[int]bool{}
	for _, p := range d.Panels {
		if ids[p.ID] {
			t.Errorf("panel id %d used twice", p.ID)
		}
		ids[p.ID] = true
		if p.GridPos.W <= 0 || p.GridPos.H <= 0 || p.GridPos.X+p.GridPos.W > 24 {
			t.Errorf("panel %q: grid position %+v out of the 24 columns", p.Title, p.GridPos)
		}
		if p.Type == "row" {
			continue
		}
		if p.Datasource.UID != "${datasource}" {
			t.Errorf("panel %q: datasource %q; want the ${datasource} variable", p.Title, p.Datasource.UID)
		}
		if len(p.Targets) == 0 {
			t.Errorf("panel %q has no query", p.Title)
		}
		for _, tg := range p.Targets {
			out[p.Title] = append(out[p.Title], tg.Expr)
		}
	}
	if len(out) < 20 {
		t.Fatalf("only %d panels with queries found", len(out))
	}
	return out
}

// TestDashboardAndAlertsQueryExistingMetrics runs flowgo with every kind of
// family present, and checks that every metric the dashboard and the alert
// rules query is in its /metrics, that every dashboard query parses as
// PromQL, and that promtool check metrics finds nothing to say.
func TestDashboardAndAlertsQueryExistingMetrics(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	text := liveMetrics(t)
	fams := families(t, text)
	exprs := dashboardExprs(t)

	t.Run("promtool check metrics finds no problem in /metrics", func(t *testing.T) {
		cmd := exec.Command(promtool, "check", "metrics")
		cmd.Stdin = strings.NewReader(text)
		out, err := cmd.CombinedOutput()
		if err != nil || len(bytes.TrimSpace(out)) > 0 {
			t.Errorf("promtool check metrics: %v\n%s", err, out)
		}
	})
	t.Run("every metric the dashboard queries exists", func(t *testing.T) {
		seen := map[string]bool{}
		for title, list := range exprs {
			for _, e := range list {
				for _, m := range metricName.FindAllString(e, -1) {
					f, ok := family(fams, m)
					if !ok {
						t.Errorf("panel %q queries %s, which flowgo does not export: %s", title, m, e)
					}
					seen[f] = true
				}
			}
		}
		// The dashboard covers flowgo's own families, every one.
		var missing []string
		for name := range fams {
			if strings.HasPrefix(name, "flowgo_") && !seen[name] {
				missing = append(missing, name)
			}
		}
		slices.Sort(missing)
		if len(missing) > 0 {
			t.Errorf("flowgo families no panel shows: %v", missing)
		}
	})
	t.Run("every metric the alert rules query exists", func(t *testing.T) {
		data, err := os.ReadFile("prometheus/flowgo-alerts.yml")
		if err != nil {
			t.Fatal(err)
		}
		names := metricName.FindAllString(string(data), -1)
		if len(names) < 12 {
			t.Fatalf("only %d metric names found in the rules", len(names))
		}
		for _, m := range names {
			if _, ok := family(fams, m); !ok {
				t.Errorf("the alert rules name %s, which flowgo does not export", m)
			}
		}
	})
	t.Run("every dashboard query is valid PromQL", func(t *testing.T) {
		// Grafana's variables replaced by what they stand for, each
		// query made a recording rule: promtool check rules parses them.
		repl := strings.NewReplacer("$__rate_interval", "5m", "$instance", ".*", "$pipeline", ".*")
		var rules strings.Builder
		rules.WriteString("groups:\n  - name: dashboard\n    rules:\n")
		i := 0
		for _, list := range exprs {
			for _, e := range list {
				i++
				q, _ := json.Marshal(repl.Replace(e))
				fmt.Fprintf(&rules, "      - record: dashboard:query%d\n        expr: %s\n", i, q)
			}
		}
		f := writeFile(t, t.TempDir(), "dashboard-rules.yml", rules.String())
		if out, err := exec.Command(promtool, "check", "rules", f).CombinedOutput(); err != nil {
			t.Errorf("promtool check rules on the dashboard's queries: %v\n%s", err, out)
		}
	})
}

// TestAlertRules runs promtool check rules and promtool test rules on
// dist/prometheus.
func TestAlertRules(t *testing.T) {
	promtool := need(t, "promtool", "prometheus")
	for _, args := range [][]string{{"check", "rules", "flowgo-alerts.yml"}, {"test", "rules", "flowgo-alerts_test.yml"}} {
		cmd := exec.Command(promtool, args...)
		cmd.Dir = "prometheus"
		out, err := cmd.CombinedOutput()
		if err != nil || !strings.Contains(string(out), "SUCCESS") {
			t.Errorf("promtool %s: %v\n%s", strings.Join(args, " "), err, out)
		}
	}
	// Every rule has a test: an alert name the test file never checks
	// would be an alert nobody saw fire.
	rules, _ := os.ReadFile("prometheus/flowgo-alerts.yml")
	tests, _ := os.ReadFile("prometheus/flowgo-alerts_test.yml")
	for _, m := range regexp.MustCompile(`(?m)^\s*- alert: (\w+)`).FindAllStringSubmatch(string(rules), -1) {
		if !strings.Contains(string(tests), "alertname: "+m[1]+"\n") {
			t.Errorf("alert %s has no test in flowgo-alerts_test.yml", m[1])
		}
	}
}
