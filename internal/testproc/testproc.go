// Package testproc holds what the test-server harnesses (miniotest,
// kafkabroker, mototest) and the test peers (pypeer, javapeer) share: where `make
// tools` puts the servers that are not Go libraries, the java they run on,
// free loopback ports, and child processes that never outlive the test
// binary.
package testproc

import (
	"bytes"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"sync"
)

// ToolsPath returns elem joined under the tools directory:
// $CLAIMSTASH_TOOLS, or <module root>/.tools (found by walking up from the
// working directory to go.mod). It reports false when neither is known.
func ToolsPath(elem ...string) (string, bool) {
	dir := os.Getenv("CLAIMSTASH_TOOLS")
	if dir == "" {
		root, ok := moduleRoot()
		if !ok {
			return "", false
		}
		dir = filepath.Join(root, ".tools")
	}
	return filepath.Join(append([]string{dir}, elem...)...), true
}

// Java returns the java binary the Java servers and peers run on:
// $JAVA_HOME/bin/java, else java on PATH.
func Java() (string, bool) {
	if home := os.Getenv("JAVA_HOME"); home != "" {
		p := filepath.Join(home, "bin", "java")
		if fi, err := os.Stat(p); err == nil && !fi.IsDir() {
			return p, true
		}
	}
	p, err := exec.LookPath("java")
	return p, err == nil
}

func moduleRoot() (string, bool) {
	dir, err := os.Getwd()
	if err != nil {
		return "", false
	}
	for {
		if _, err := os.Stat(filepath.Join(dir, "go.mod")); err == nil {
			return dir, true
		}
		parent := filepath.Dir(dir)
		if parent == dir {
			return "", false
		}
		dir = parent
	}
}

// FreeAddr picks a free loopback port, "127.0.0.1:<port>". Another process
// may take it before the server binds it; harnesses retry then.
func FreeAddr() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return l.Addr().String(), nil
}

// Output collects a child process's output: exec writes its stdout and
// stderr from two goroutines, and a test reads it when the server fails.
type Output struct {
	mu  sync.Mutex
	buf bytes.Buffer
}

func (o *Output) Write(p []byte) (int, error) {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.Write(p)
}

// String returns what has been written so far.
func (o *Output) String() string {
	o.mu.Lock()
	defer o.mu.Unlock()
	return o.buf.String()
}
