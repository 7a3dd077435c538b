package cache

import (
	"context"
	"errors"
	"fmt"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// redisURL names the Redis server for the tests: XAT_TEST_REDIS_URL, or a
// throwaway redis-server that TestMain starts on a loopback port. It is
// empty when neither could be had, and redisErr says why.
var (
	redisURL string
	redisErr error
)

// prepareRedisCmd is set on Linux so that the server dies with the test
// binary, even when a timeout kills it before TestMain can clean up.
var prepareRedisCmd func(*exec.Cmd)

func TestMain(m *testing.M) {
	stop := startRedis()
	code := m.Run()
	stop()
	os.Exit(code)
}

// needRedis skips the test when there is no Redis, or fails it under CI,
// where the server must be installed.
func needRedis(tb testing.TB) {
	tb.Helper()
	if redisURL != "" {
		return
	}
	if os.Getenv("CI") != "" {
		tb.Fatalf("Redis is required under CI: %v", redisErr)
	}
	tb.Skipf("no Redis for tests (install redis-server or set XAT_TEST_REDIS_URL): %v", redisErr)
}

func startRedis() (stop func()) {
	if u := os.Getenv("XAT_TEST_REDIS_URL"); u != "" {
		redisURL = u
		return func() {}
	}
	bin, err := exec.LookPath("redis-server")
	if err != nil {
		redisErr = fmt.Errorf("redis-server not found (Debian package redis-server): %w", err)
		return func() {}
	}
	dir, err := os.MkdirTemp("", "xat-cache-redis-")
	if err != nil {
		redisErr = err
		return func() {}
	}

	// The free port may be taken between finding and binding it; another
	// try then picks another.
	for range 3 {
		var kill func()
		kill, redisErr = launchRedis(bin, dir)
		if redisErr == nil {
			return func() {
				kill()
				os.RemoveAll(dir)
			}
		}
	}
	os.RemoveAll(dir)
	return func() {}
}

// launchRedis starts a server with no persistence, waits until it answers
// and returns how to stop it.
func launchRedis(bin, dir string) (kill func(), err error) {
	port, err := freePort()
	if err != nil {
		return nil, err
	}
	logPath := filepath.Join(dir, "redis-"+port+".log")
	cmd := exec.Command(bin,
		"--port", port,
		"--bind", "127.0.0.1",
		"--save", "",
		"--appendonly", "no",
		"--dir", dir,
		"--logfile", logPath,
	)
	if prepareRedisCmd != nil {
		prepareRedisCmd(cmd)
	}
	if err := cmd.Start(); err != nil {
		return nil, err
	}
	exited := make(chan error, 1)
	go func() { exited <- cmd.Wait() }()
	kill = func() {
		cmd.Process.Kill()
		<-exited
	}

	url := "redis://127.0.0.1:" + port + "/0"
	opts, _ := redis.ParseURL(url)
	rdb := redis.NewClient(opts)
	defer rdb.Close()

	deadline := time.Now().Add(10 * time.Second)
	for time.Now().Before(deadline) {
		select {
		case err := <-exited:
			log, _ := os.ReadFile(logPath)
			return nil, fmt.Errorf("redis-server exited: %v: %s", err, log)
		default:
		}
		ctx, cancel := context.WithTimeout(context.Background(), time.Second)
		err = rdb.Ping(ctx).Err()
		cancel()
		if err == nil {
			redisURL = url
			return kill, nil
		}
		time.Sleep(20 * time.Millisecond)
	}
	kill()
	return nil, errors.New("redis-server did not answer within 10s")
}

func freePort() (string, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return "", err
	}
	defer l.Close()
	return strconv.Itoa(l.Addr().(*net.TCPAddr).Port), nil
}
