package dist

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/BurntSushi/toml"
	"github.com/twmb/franz-go/pkg/kfake"
	"github.com/twmb/franz-go/pkg/kgo"

	"github.com/flowgo/flowgo/pipeline"
)

// The manifest is read with PyYAML (no YAML library in go.mod) into JSON,
// then decoded into the subset of the Kubernetes API it uses with unknown
// fields refused, so a misspelt or misplaced field fails the test.

type objectMeta struct {
	Name        string            `json:"name"`
	Labels      map[string]string `json:"labels"`
	Annotations map[string]string `json:"annotations"`
}

type configMap struct {
	APIVersion string            `json:"apiVersion"`
	Kind       string            `json:"kind"`
	Metadata   objectMeta        `json:"metadata"`
	Data       map[string]string `json:"data"`
}

type deployment struct {
	APIVersion string     `json:"apiVersion"`
	Kind       string     `json:"kind"`
	Metadata   objectMeta `json:"metadata"`
	Spec       struct {
		Replicas *int32 `json:"replicas"`
		Selector struct {
			MatchLabels map[string]string `json:"matchLabels"`
		} `json:"selector"`
		Template struct {
			Metadata objectMeta `json:"metadata"`
			Spec     podSpec    `json:"spec"`
		} `json:"template"`
	} `json:"spec"`
}

type podSpec struct {
	TerminationGracePeriodSeconds *int64 `json:"terminationGracePeriodSeconds"`
	AutomountServiceAccountToken  *bool  `json:"automountServiceAccountToken"`
	EnableServiceLinks            *bool  `json:"enableServiceLinks"`
	SecurityContext               struct {
		RunAsNonRoot   *bool           `json:"runAsNonRoot"`
		RunAsUser      *int64          `json:"runAsUser"`
		RunAsGroup     *int64          `json:"runAsGroup"`
		SeccompProfile *seccompProfile `json:"seccompProfile"`
	} `json:"securityContext"`
	InitContainers []container `json:"initContainers"`
	Containers     []container `json:"containers"`
	Volumes        []volume    `json:"volumes"`
}

type volume struct {
	Name      string `json:"name"`
	ConfigMap *struct {
		Name string `json:"name"`
	} `json:"configMap"`
	EmptyDir *struct {
		SizeLimit string `json:"sizeLimit"`
	} `json:"emptyDir"`
}

type seccompProfile struct {
	Type string `json:"type"`
}

type container struct {
	Name            string   `json:"name"`
	Image           string   `json:"image"`
	ImagePullPolicy string   `json:"imagePullPolicy"`
	RestartPolicy   string   `json:"restartPolicy"`
	Command         []string `json:"command"`
	Args            []string `json:"args"`
	Ports           []struct {
		Name          string `json:"name"`
		ContainerPort int    `json:"containerPort"`
		Protocol      string `json:"protocol"`
	} `json:"ports"`
	Env []struct {
		Name  string `json:"name"`
		Value string `json:"value"`
	} `json:"env"`
	Resources struct {
		Requests map[string]string `json:"requests"`
		Limits   map[string]string `json:"limits"`
	} `json:"resources"`
	SecurityContext struct {
		AllowPrivilegeEscalation *bool `json:"allowPrivilegeEscalation"`
		ReadOnlyRootFilesystem   *bool `json:"readOnlyRootFilesystem"`
		RunAsNonRoot             *bool `json:"runAsNonRoot"`
		Capabilities             struct {
			Drop []string `json:"drop"`
		} `json:"capabilities"`
	} `json:"securityContext"`
	StartupProbe   *probe `json:"startupProbe"`
	LivenessProbe  *probe `json:"livenessProbe"`
	ReadinessProbe *probe `json:"readinessProbe"`
	VolumeMounts   []struct {
		Name      string `json:"name"`
		MountPath string `json:"mountPath"`
		ReadOnly  bool   `json:"readOnly"`
	} `json:"volumeMounts"`
}

type probe struct {
	HTTPGet *struct {
		Path string `json:"path"`
		Port any    `json:"port"` // a number or a port name
	} `json:"httpGet"`
	InitialDelaySeconds int `json:"initialDelaySeconds"`
	PeriodSeconds       int `json:"periodSeconds"`
	TimeoutSeconds      int `json:"timeoutSeconds"`
	FailureThreshold    int `json:"failureThreshold"`
}

// sidecar is the parsed manifest with the parts the tests look at.
type sidecar struct {
	cm      configMap
	dep     deployment
	flowgo  container // the sidecar
	app     container
	toml    string
	cfg     sidecarConfig
	dataDir string // the writable volume's mount path in the flowgo container
}

// sidecarConfig is what the tests read of the ConfigMap's flowgo.toml.
type sidecarConfig struct {
	Input struct {
		Listen         string `toml:"listen"`
		Format         string `toml:"format"`
		Framing        string `toml:"framing"`
		DeadLetterFile string `toml:"dead_letter_file"`
	} `toml:"input"`
	Output struct {
		Type            string   `toml:"type"`
		KafkaBrokers    []string `toml:"kafka_brokers"`
		KafkaTopic      string   `toml:"kafka_topic"`
		ShutdownTimeout string   `toml:"shutdown_timeout"`
		DeadLetterFile  string   `toml:"dead_letter_file"`
	} `toml:"output"`
	Metrics struct {
		Listen string `toml:"listen"`
	} `toml:"metrics"`
}

// yamlToJSON converts the YAML documents in path to a JSON array with
// PyYAML. Debian's python3 comes first: that is where apt-get install
// python3-yaml puts the module, whatever python3 is first on PATH.
func yamlToJSON(t *testing.T, path string) []byte {
	t.Helper()
	const script = `
import json, sys, yaml
json.dump(list(yaml.safe_load_all(open(sys.argv[1]))), sys.stdout)
`
	var tried []string
	for _, py := range []string{"/usr/bin/python3", "python3"} {
		if _, err := exec.LookPath(py); err != nil {
			continue
		}
		if exec.Command(py, "-c", "import yaml").Run() != nil {
			tried = append(tried, py)
			continue
		}
		cmd := exec.Command(py, "-c", script, path)
		var stderr bytes.Buffer
		cmd.Stderr = &stderr
		out, err := cmd.Output()
		if err != nil {
			t.Fatalf("reading %s as YAML: %v\n%s", path, err, stderr.String())
		}
		return out
	}
	t.Fatalf("no python3 with PyYAML (tried %v) to read %s: apt-get install python3-yaml", tried, path)
	return nil
}

func loadSidecar(t *testing.T) *sidecar {
	t.Helper()
	out := yamlToJSON(t, filepath.Join("kubernetes", "sidecar.yaml"))
	var docs []json.RawMessage
	if err := json.Unmarshal(out, &docs); err != nil {
		t.Fatal(err)
	}
	if len(docs) != 2 {
		t.Fatalf("got %d YAML documents; want 2 (ConfigMap, Deployment)", len(docs))
	}
	strict := func(doc json.RawMessage, v any) {
		d := json.NewDecoder(bytes.NewReader(doc))
		d.DisallowUnknownFields()
		if err := d.Decode(v); err != nil {
			t.Fatalf("kubernetes/sidecar.yaml: %v", err)
		}
	}
	s := &sidecar{}
	strict(docs[0], &s.cm)
	strict(docs[1], &s.dep)
	if s.cm.APIVersion != "v1" || s.cm.Kind != "ConfigMap" || s.dep.APIVersion != "apps/v1" || s.dep.Kind != "Deployment" {
		t.Fatalf("got %s %s and %s %s; want v1 ConfigMap and apps/v1 Deployment", s.cm.APIVersion, s.cm.Kind, s.dep.APIVersion, s.dep.Kind)
	}
	pod := s.dep.Spec.Template.Spec
	if len(pod.InitContainers) != 1 || len(pod.Containers) != 1 {
		t.Fatalf("got %d init containers and %d containers; want flowgo and the application", len(pod.InitContainers), len(pod.Containers))
	}
	s.flowgo, s.app = pod.InitContainers[0], pod.Containers[0]
	s.toml = s.cm.Data["flowgo.toml"]
	if _, err := toml.Decode(s.toml, &s.cfg); err != nil {
		t.Fatalf("the ConfigMap's flowgo.toml: %v", err)
	}
	for _, m := range s.flowgo.VolumeMounts {
		if !m.ReadOnly && strings.HasPrefix(s.cfg.Output.DeadLetterFile, m.MountPath+"/") {
			s.dataDir = m.MountPath
		}
	}
	return s
}

// portOf resolves a probe's port, a number or the name of a container port.
func portOf(t *testing.T, c container, port any) int {
	t.Helper()
	switch p := port.(type) {
	case float64:
		return int(p)
	case string:
		for _, cp := range c.Ports {
			if cp.Name == p {
				return cp.ContainerPort
			}
		}
		t.Fatalf("probe port %q names no port of container %s", p, c.Name)
	}
	t.Fatalf("probe port %v: want a number or a name", port)
	return 0
}

func TestSidecarManifest(t *testing.T) {
	s := loadSidecar(t)
	pod := s.dep.Spec.Template.Spec
	on := func(b *bool) bool { return b != nil && *b }

	t.Run("flowgo is a native sidecar: an init container that keeps running", func(t *testing.T) {
		if s.flowgo.Name != "flowgo" || s.flowgo.RestartPolicy != "Always" {
			t.Errorf("init container %s restartPolicy %q; want flowgo with Always", s.flowgo.Name, s.flowgo.RestartPolicy)
		}
		if got, want := s.flowgo.Args, []string{"run", "-c", "/etc/flowgo/flowgo.toml"}; !slices.Equal(got, want) {
			t.Errorf("args: got %q; want %q", got, want)
		}
	})
	t.Run("the ConfigMap is mounted read-only where flowgo reads its config", func(t *testing.T) {
		vol := ""
		for _, m := range s.flowgo.VolumeMounts {
			if m.MountPath == "/etc/flowgo" && m.ReadOnly {
				vol = m.Name
			}
		}
		ok := slices.ContainsFunc(pod.Volumes, func(v volume) bool {
			return v.Name == vol && v.ConfigMap != nil && v.ConfigMap.Name == s.cm.Metadata.Name
		})
		if vol == "" || !ok {
			t.Errorf("no read-only mount at /etc/flowgo of a volume from ConfigMap %s", s.cm.Metadata.Name)
		}
		if _, ok := s.cm.Data["flowgo.toml"]; !ok {
			t.Error("the ConfigMap has no flowgo.toml")
		}
	})
	t.Run("every container runs as non-root with a read-only root and no capabilities", func(t *testing.T) {
		if !on(pod.SecurityContext.RunAsNonRoot) || pod.SecurityContext.RunAsUser == nil || *pod.SecurityContext.RunAsUser == 0 {
			t.Error("the pod's securityContext does not set runAsNonRoot and a non-zero runAsUser")
		}
		if sp := pod.SecurityContext.SeccompProfile; sp == nil || sp.Type != "RuntimeDefault" {
			t.Error("the pod does not use the RuntimeDefault seccomp profile")
		}
		for _, c := range []container{s.flowgo, s.app} {
			sc := c.SecurityContext
			if !on(sc.ReadOnlyRootFilesystem) || sc.AllowPrivilegeEscalation == nil || *sc.AllowPrivilegeEscalation || !on(sc.RunAsNonRoot) {
				t.Errorf("%s: want readOnlyRootFilesystem, runAsNonRoot and allowPrivilegeEscalation false", c.Name)
			}
			if !slices.Equal(sc.Capabilities.Drop, []string{"ALL"}) {
				t.Errorf("%s: capabilities drop %q; want [ALL]", c.Name, sc.Capabilities.Drop)
			}
			if c.Resources.Requests["cpu"] == "" || c.Resources.Requests["memory"] == "" || c.Resources.Limits["memory"] == "" {
				t.Errorf("%s: want cpu and memory requests and a memory limit, got %v %v", c.Name, c.Resources.Requests, c.Resources.Limits)
			}
		}
	})
	t.Run("the dead-letter files are on the writable data volume", func(t *testing.T) {
		if s.dataDir == "" {
			t.Fatalf("output.dead_letter_file %q is on no writable mount", s.cfg.Output.DeadLetterFile)
		}
		if !strings.HasPrefix(s.cfg.Input.DeadLetterFile, s.dataDir+"/") {
			t.Errorf("input.dead_letter_file %q is not under %s", s.cfg.Input.DeadLetterFile, s.dataDir)
		}
	})
	t.Run("the probes ask /healthz and /readyz on the metrics listener", func(t *testing.T) {
		_, port, err := net.SplitHostPort(s.cfg.Metrics.Listen)
		if err != nil {
			t.Fatalf("metrics.listen %q: %v", s.cfg.Metrics.Listen, err)
		}
		host, _, _ := net.SplitHostPort(s.cfg.Metrics.Listen)
		if ip := net.ParseIP(host); host == "localhost" || (ip != nil && ip.IsLoopback()) {
			t.Errorf("metrics.listen %q: the kubelet probes the pod's IP, not loopback", s.cfg.Metrics.Listen)
		}
		for _, p := range []struct {
			name, path string
			probe      *probe
		}{
			{"startupProbe", "/healthz", s.flowgo.StartupProbe},
			{"livenessProbe", "/healthz", s.flowgo.LivenessProbe},
			{"readinessProbe", "/readyz", s.flowgo.ReadinessProbe},
		} {
			if p.probe == nil || p.probe.HTTPGet == nil {
				t.Errorf("%s: want an httpGet probe", p.name)
				continue
			}
			if p.probe.HTTPGet.Path != p.path {
				t.Errorf("%s: path %s; want %s", p.name, p.probe.HTTPGet.Path, p.path)
			}
			if got := portOf(t, s.flowgo, p.probe.HTTPGet.Port); strconv.Itoa(got) != port {
				t.Errorf("%s: port %d; want the metrics port %s", p.name, got, port)
			}
		}
	})
	t.Run("the grace period outlasts flowgo's shutdown timeout", func(t *testing.T) {
		timeout := pipeline.DefaultShutdownTimeout
		if s.cfg.Output.ShutdownTimeout != "" {
			d, err := time.ParseDuration(s.cfg.Output.ShutdownTimeout)
			if err != nil {
				t.Fatal(err)
			}
			timeout = d
		}
		g := pod.TerminationGracePeriodSeconds
		if g == nil {
			t.Fatalf("no terminationGracePeriodSeconds; want at least shutdown_timeout %v + 10s", timeout)
		}
		if time.Duration(*g)*time.Second < timeout+10*time.Second {
			t.Errorf("terminationGracePeriodSeconds %d; want at least shutdown_timeout %v + 10s", *g, timeout)
		}
	})
	t.Run("the application sends what flowgo's input expects, where it listens", func(t *testing.T) {
		script := strings.Join(s.app.Args, "\n")
		host, port, err := net.SplitHostPort(s.cfg.Input.Listen)
		if err != nil {
			t.Fatal(err)
		}
		if host != "127.0.0.1" {
			t.Errorf("input.listen %q: want the pod's loopback only", s.cfg.Input.Listen)
		}
		for _, want := range []string{"--tcp", "--server " + host, "--port " + port, "--rfc5424", "--octet-count"} {
			if !strings.Contains(script, want) {
				t.Errorf("the application's logger lacks %s", want)
			}
		}
		if s.cfg.Input.Format != "rfc5424" || s.cfg.Input.Framing != "syslen" || s.cfg.Output.Type != "kafka" {
			t.Errorf("input %s/%s, output %s; want rfc5424 with syslen framing to kafka", s.cfg.Input.Format, s.cfg.Input.Framing, s.cfg.Output.Type)
		}
	})
}

// sidecarTOML returns the ConfigMap's flowgo.toml with the data volume's
// path moved to a directory of the test (the pod mounts an emptyDir there)
// and any further replacements applied.
func sidecarTOML(t *testing.T, s *sidecar, dataDir string, repl ...string) string {
	t.Helper()
	out := replaceOnce(t, "flowgo.toml", s.toml, s.dataDir+"/", dataDir+"/")
	for i := 0; i < len(repl); i += 2 {
		out = replaceOnce(t, "flowgo.toml", out, repl[i], repl[i+1])
	}
	return out
}

func TestSidecarConfigPassesCheck(t *testing.T) {
	s := loadSidecar(t)
	dir := t.TempDir()
	cfg := writeFile(t, dir, "flowgo.toml", sidecarTOML(t, s, dir))
	out, err := exec.Command(binary(t), "check", "-c", cfg).CombinedOutput()
	if err != nil {
		t.Errorf("flowgo check on the ConfigMap's flowgo.toml: %v\n%s", err, out)
	}
}

// TestSidecarEndToEnd runs the pod on this machine: flowgo with the
// ConfigMap's config (Kafka brokers pointed at an in-process test broker,
// ports moved to free ones, the data volume to a temporary directory), the
// probes' requests, and the application container's own script, then reads
// the record from Kafka.
func TestSidecarEndToEnd(t *testing.T) {
	need(t, "logger", "bsdutils")
	s := loadSidecar(t)
	bin := binary(t)
	dir := t.TempDir()

	cluster, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(1, s.cfg.Output.KafkaTopic))
	if err != nil {
		t.Fatal(err)
	}
	defer cluster.Close()
	brokers, _ := json.Marshal(cluster.ListenAddrs()) // a JSON array of strings is a TOML array
	_, inPort, _ := net.SplitHostPort(s.cfg.Input.Listen)
	inAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	metricsAddr := fmt.Sprintf("127.0.0.1:%d", freePort(t, "tcp"))
	src := sidecarTOML(t, s, dir,
		strconv.Quote(s.cfg.Input.Listen), strconv.Quote(inAddr),
		strconv.Quote(s.cfg.Metrics.Listen), strconv.Quote(metricsAddr))
	brokersLine := regexp.MustCompile(`(?m)^kafka_brokers = .*$`)
	if len(brokersLine.FindAllString(src, -1)) != 1 {
		t.Fatal("flowgo.toml: want one kafka_brokers line")
	}
	cfg := writeFile(t, dir, "flowgo.toml", brokersLine.ReplaceAllLiteralString(src, "kafka_brokers = "+string(brokers)))

	p := start(t, bin, "run", "-c", cfg)
	get := func(path string) (int, string) {
		c := http.Client{Timeout: time.Second}
		resp, err := c.Get("http://" + metricsAddr + path)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var b bytes.Buffer
		b.ReadFrom(resp.Body)
		return resp.StatusCode, b.String()
	}
	// The startup probe: the application starts once it passes.
	waitFor(t, 10*time.Second, "the startup probe (/healthz) to pass", func() bool {
		if p.exited() {
			t.Fatalf("flowgo exited:\n%s", p.stderr)
		}
		code, _ := get("/healthz")
		return code == http.StatusOK
	})

	_, appPort, _ := net.SplitHostPort(inAddr)
	script := replaceOnce(t, "the application's script", strings.Join(s.app.Args, "\n"), "--port "+inPort, "--port "+appPort)
	app := start(t, append(slices.Clone(s.app.Command), script)...)

	cl, err := kgo.NewClient(kgo.SeedBrokers(cluster.ListenAddrs()...), kgo.ConsumeTopics(s.cfg.Output.KafkaTopic),
		kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchMaxWait(100*time.Millisecond))
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	var rec *kgo.Record
	for rec == nil && ctx.Err() == nil {
		fs := cl.PollFetches(ctx)
		fs.EachRecord(func(r *kgo.Record) {
			if rec == nil {
				rec = r
			}
		})
	}
	syscall.Kill(-app.cmd.Process.Pid, syscall.SIGKILL)
	if rec == nil {
		t.Fatalf("no record reached Kafka in 10s; flowgo:\n%s\napplication:\n%s", p.stderr, app.stderr)
	}
	var gelf map[string]any
	if err := json.Unmarshal(rec.Value, &gelf); err != nil {
		t.Fatalf("the Kafka record is not GELF JSON: %v\n%s", err, rec.Value)
	}
	hostname, _ := os.Hostname()
	if gelf["short_message"] != "request 1 handled" || gelf["host"] != hostname {
		t.Errorf("got short_message %q host %q; want %q and %q\n%s", gelf["short_message"], gelf["host"], "request 1 handled", hostname, rec.Value)
	}
	if want := hostname; string(rec.Key) != want {
		t.Errorf("Kafka key: got %q; want the hostname %q (kafka_key)", rec.Key, want)
	}
	// The consumer can see the record before flowgo has read the broker's
	// acknowledgement, which is what proves the output ready: wait for it.
	code, body := get("/readyz")
	for deadline := time.Now().Add(10 * time.Second); code != http.StatusOK && time.Now().Before(deadline); {
		time.Sleep(20 * time.Millisecond)
		code, body = get("/readyz")
	}
	if code != http.StatusOK {
		t.Errorf("readiness probe /readyz with Kafka up: got %d %s; want 200", code, body)
	}
	if code, body := get("/healthz"); code != http.StatusOK {
		t.Errorf("liveness probe /healthz: got %d %s; want 200", code, body)
	}

	syscall.Kill(p.cmd.Process.Pid, syscall.SIGTERM)
	if code := p.wait(t, 10*time.Second); code != 0 {
		t.Errorf("flowgo exited with %d; want 0:\n%s", code, p.stderr)
	}
	for _, f := range []string{s.cfg.Input.DeadLetterFile, s.cfg.Output.DeadLetterFile} {
		data, err := os.ReadFile(filepath.Join(dir, strings.TrimPrefix(f, s.dataDir+"/")))
		if err != nil || len(data) > 0 {
			t.Errorf("dead-letter file %s: %v, %d bytes; want it created and empty", f, err, len(data))
		}
	}
}
