// Package dist holds the files that install and run flowgo: a hardened
// systemd unit and its logrotate snippet, a Dockerfile, and a Kubernetes
// sidecar manifest. It has no Go code; its tests build flowgo the way the
// Dockerfile does and check every file against the tools that read it
// (systemd-analyze, strace, logrotate, flowgo check, a Kafka test broker).
package dist
