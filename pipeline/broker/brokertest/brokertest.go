// Package brokertest runs a kfake broker in a child process of a test
// binary, for benchmarks whose reported memory must be the code under test
// alone, without the broker's stored records.
//
// The test binary's TestMain calls Serve first: in the child it serves the
// broker and returns true, and TestMain then returns without running tests.
// A benchmark calls Start, which runs the binary again as that child.
package brokertest

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"testing"

	"github.com/twmb/franz-go/pkg/kfake"

	"github.com/streamrec/streamrec/pipeline/kafka"
)

// Env names the child's topic and partition count ("topic:partitions").
const Env = "STREAMREC_BENCH_BROKER"

// Serve, in the child Start runs, serves a broker with the topic of Env,
// prints its address on stdout and serves until stdin closes; it then
// returns true. Anywhere else it returns false at once.
func Serve() bool {
	spec := os.Getenv(Env)
	if spec == "" {
		return false
	}
	topic, parts, _ := strings.Cut(spec, ":")
	n, err := strconv.Atoi(parts)
	if err != nil {
		fmt.Fprintf(os.Stderr, "%s=%q: want topic:partitions\n", Env, spec)
		os.Exit(1)
	}
	c, err := kfake.NewCluster(kfake.NumBrokers(1), kfake.SeedTopics(int32(n), topic))
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(1)
	}
	fmt.Println(c.ListenAddrs()[0])
	_, _ = io.Copy(io.Discard, os.Stdin)
	c.Close()
	return true
}

// Start runs the test binary as a broker child with topic's partitions and
// returns a config pointing at it; the child stops when tb's test ends.
func Start(tb testing.TB, topic string, partitions int) kafka.Config {
	tb.Helper()
	cmd := exec.Command(os.Args[0], "-test.run=^$")
	cmd.Env = append(os.Environ(), fmt.Sprintf("%s=%s:%d", Env, topic, partitions))
	stdin, err := cmd.StdinPipe()
	if err != nil {
		tb.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		tb.Fatal(err)
	}
	cmd.Stderr = os.Stderr
	if err := cmd.Start(); err != nil {
		tb.Fatal(err)
	}
	tb.Cleanup(func() { stdin.Close(); _ = cmd.Wait() })
	addr, err := bufio.NewReader(stdout).ReadString('\n')
	if err != nil {
		tb.Fatalf("bench broker: %v", err)
	}
	return kafka.Config{Brokers: []string{strings.TrimSpace(addr)}}
}
