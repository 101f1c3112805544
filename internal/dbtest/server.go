package dbtest

import (
	"context"
	"errors"
	"fmt"
	"os"
	"path/filepath"
	"time"

	"github.com/ory/dockertest/v3"

	"github.com/infrawatch/infrawatch/internal/db"
	"github.com/infrawatch/infrawatch/internal/pgcluster"
)

// DockerImage is the TimescaleDB image used when a Docker daemon is reachable.
const DockerImage = "timescale/timescaledb-ha"

// DockerTag pins the image version.
const DockerTag = "pg17"

func startDocker(ctx context.Context) (string, func(), error) {
	if os.Getenv("DOCKER_HOST") == "" {
		if _, err := os.Stat("/var/run/docker.sock"); err != nil {
			return "", nil, errors.New("no Docker daemon")
		}
	}
	pool, err := dockertest.NewPool("")
	if err != nil {
		return "", nil, err
	}
	pool.MaxWait = 2 * time.Minute
	if err := pool.Client.Ping(); err != nil {
		return "", nil, fmt.Errorf("docker daemon not reachable: %w", err)
	}
	res, err := pool.Run(DockerImage, DockerTag, []string{"POSTGRES_PASSWORD=infrawatch", "POSTGRES_USER=postgres"})
	if err != nil {
		return "", nil, fmt.Errorf("start %s:%s: %w", DockerImage, DockerTag, err)
	}
	_ = res.Expire(30 * 60)
	url := fmt.Sprintf("postgres://postgres:infrawatch@%s/postgres?sslmode=disable", res.GetHostPort("5432/tcp"))
	err = pool.Retry(func() error { return db.NewAdmin(url).Ping(ctx) })
	if err != nil {
		_ = pool.Purge(res)
		return "", nil, fmt.Errorf("TimescaleDB container did not become ready: %w", err)
	}
	return url, func() { _ = pool.Purge(res) }, nil
}

func startLocalCluster(ctx context.Context) (url, logFile string, stop func(), err error) {
	binDir, err := pgcluster.FindBinDir()
	if err != nil {
		return "", "", nil, err
	}
	dir, err := os.MkdirTemp("", "infrawatch-test-pg-")
	if err != nil {
		return "", "", nil, err
	}
	// The postgres system user must reach the directory when the tests run as root.
	_ = os.Chmod(dir, 0o755)
	settings := map[string]string{
		// A throwaway cluster: durability buys nothing here, speed does.
		"fsync":              "off",
		"synchronous_commit": "off",
		"full_page_writes":   "off",
		"max_connections":    "300",
	}
	if pgcluster.TimescaleDBInstalled(binDir) {
		settings["shared_preload_libraries"] = "timescaledb"
		settings["timescaledb.telemetry_level"] = "off"
		settings["max_worker_processes"] = "32"
		settings["timescaledb.max_background_workers"] = "16"
	}
	cluster, err := pgcluster.Start(ctx, pgcluster.Config{
		DataDir:  filepath.Join(dir, "data"),
		BinDir:   binDir,
		Settings: settings,
		LogFile:  filepath.Join(dir, "server.log"),
	})
	if err != nil {
		os.RemoveAll(dir)
		return "", "", nil, err
	}
	return cluster.URL("postgres"), filepath.Join(dir, "server.log"), func() {
		_ = cluster.Stop()
		os.RemoveAll(dir)
	}, nil
}
