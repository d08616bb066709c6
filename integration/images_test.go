package integration

import (
	"bufio"
	"bytes"
	"context"
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/testcontainers/testcontainers-go"
	"github.com/testcontainers/testcontainers-go/wait"
	"go.yaml.in/yaml/v3"
)

// The container images of the "containers" mode are those of
// docker-compose.yml: both read them from the .env file at the module root
// (compose reads it itself), so there is one list. TestImagesShared fails
// if compose names an image another way.
const (
	kafkaImageVar   = "KAFKA_IMAGE"
	natsImageVar    = "NATS_IMAGE"
	minioImageVar   = "MINIO_IMAGE"
	minioMCImageVar = "MINIO_MC_IMAGE"
)

// dotEnv reads KEY=VALUE lines of the module root's .env ('#' starts a
// comment line), as compose does for this simple form.
func dotEnv() (map[string]string, error) {
	data, err := os.ReadFile(filepath.Join("..", ".env"))
	if err != nil {
		return nil, err
	}
	env := map[string]string{}
	sc := bufio.NewScanner(bytes.NewReader(data))
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		k, v, ok := strings.Cut(line, "=")
		if !ok || k == "" || strings.ContainsAny(v, "\"'$ ") {
			return nil, fmt.Errorf(".env line %d: want KEY=VALUE, no quotes or spaces: %q", n, line)
		}
		env[k] = v
	}
	return env, sc.Err()
}

// image returns the image .env names under key, failing t if it has none.
func image(t testing.TB, key string) string {
	t.Helper()
	env, err := dotEnv()
	if err != nil {
		t.Fatalf("images: %v", err)
	}
	img, ok := env[key]
	if !ok {
		t.Fatalf("images: .env has no %s", key)
	}
	return img
}

// TestImagesShared: every service of docker-compose.yml takes its image
// from a .env variable, every image variable is used, and the variables the
// containers mode uses are there. Kafka is Apache Kafka 4.
func TestImagesShared(t *testing.T) {
	env, err := dotEnv()
	if err != nil {
		t.Fatal(err)
	}
	data, err := os.ReadFile(filepath.Join("..", "docker-compose.yml"))
	if err != nil {
		t.Fatal(err)
	}
	var compose struct {
		Services map[string]struct {
			Image string `yaml:"image"`
		} `yaml:"services"`
	}
	if err := yaml.Unmarshal(data, &compose); err != nil {
		t.Fatalf("docker-compose.yml: %v", err)
	}
	ref := regexp.MustCompile(`^\$\{([A-Z0-9_]+)\}$`)
	used := map[string]bool{}
	for name, svc := range compose.Services {
		m := ref.FindStringSubmatch(svc.Image)
		if m == nil {
			t.Errorf("compose service %s: image %q, want ${VAR} from .env", name, svc.Image)
			continue
		}
		if _, ok := env[m[1]]; !ok {
			t.Errorf("compose service %s: .env has no %s", name, m[1])
		}
		used[m[1]] = true
	}
	for k := range env {
		if strings.HasSuffix(k, "_IMAGE") && !used[k] {
			t.Errorf(".env: %s is used by no compose service", k)
		}
	}
	for _, k := range []string{kafkaImageVar, natsImageVar, minioImageVar, minioMCImageVar} {
		if !used[k] {
			t.Errorf("%s: the containers mode uses it, compose does not", k)
		}
	}
	if img := env[kafkaImageVar]; !strings.HasPrefix(img, "apache/kafka:4.") {
		t.Errorf("%s=%s, want an apache/kafka 4.x image", kafkaImageVar, img)
	}
	for _, svc := range []string{"kafka", "nats", "minio", "minio-setup"} {
		if _, ok := compose.Services[svc]; !ok {
			t.Errorf("docker-compose.yml has no service %s", svc)
		}
	}
}

// runApacheKafka starts an apache/kafka container in KRaft combined mode.
// Clients reach it on a mapped host port, which must be in the advertised
// listeners before the broker starts: the container waits for a start
// script that the post-start hook writes once the port is known.
func runApacheKafka(ctx context.Context, img string) (*testcontainers.DockerContainer, []string, error) {
	const script = "/tmp/claimstash-start.sh"
	var brokers []string
	c, err := testcontainers.Run(ctx, img,
		testcontainers.WithExposedPorts("9092/tcp"),
		testcontainers.WithEnv(map[string]string{
			"KAFKA_NODE_ID":                                  "1",
			"KAFKA_PROCESS_ROLES":                            "broker,controller",
			"KAFKA_LISTENERS":                                "PLAINTEXT://0.0.0.0:9092,BROKER://0.0.0.0:9093,CONTROLLER://0.0.0.0:9094",
			"KAFKA_LISTENER_SECURITY_PROTOCOL_MAP":           "PLAINTEXT:PLAINTEXT,BROKER:PLAINTEXT,CONTROLLER:PLAINTEXT",
			"KAFKA_INTER_BROKER_LISTENER_NAME":               "BROKER",
			"KAFKA_CONTROLLER_LISTENER_NAMES":                "CONTROLLER",
			"KAFKA_CONTROLLER_QUORUM_VOTERS":                 "1@localhost:9094",
			"KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR":         "1",
			"KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR": "1",
			"KAFKA_TRANSACTION_STATE_LOG_MIN_ISR":            "1",
			"KAFKA_GROUP_INITIAL_REBALANCE_DELAY_MS":         "0",
			"KAFKA_GROUP_MIN_SESSION_TIMEOUT_MS":             "100",
		}),
		testcontainers.WithEntrypoint("sh"),
		testcontainers.WithCmd("-c", "while [ ! -f "+script+" ]; do sleep 0.1; done; exec sh "+script),
		testcontainers.WithLifecycleHooks(testcontainers.ContainerLifecycleHooks{
			PostStarts: []testcontainers.ContainerHook{func(ctx context.Context, c testcontainers.Container) error {
				host, err := c.Host(ctx)
				if err != nil {
					return err
				}
				port, err := c.MappedPort(ctx, "9092/tcp")
				if err != nil {
					return err
				}
				addr := fmt.Sprintf("%s:%d", host, port.Num())
				brokers = []string{addr}
				start := "export KAFKA_ADVERTISED_LISTENERS=PLAINTEXT://" + addr + ",BROKER://localhost:9093\n" +
					"exec /etc/kafka/docker/run\n"
				if err := c.CopyToContainer(ctx, []byte(start), script, 0o755); err != nil {
					return fmt.Errorf("copying the start script: %w", err)
				}
				return wait.ForLog("Kafka Server started").WaitUntilReady(ctx, c)
			}},
		}),
	)
	return c, brokers, err
}
