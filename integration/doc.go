// Package integration runs the whole pipeline end to end against real
// servers: containers when a Docker engine is reachable, and otherwise the
// servers the harness starts itself (kfake, an embedded nats-server, MinIO).
package integration
