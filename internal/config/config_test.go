package config

import (
	"errors"
	"log/slog"
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/spf13/pflag"
	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
)

func env(m map[string]string) func(string) (string, bool) {
	return func(k string) (string, bool) {
		v, ok := m[k]
		return v, ok
	}
}

func TestLoadDefaults(t *testing.T) {
	t.Parallel()
	c, err := Load(env(nil), nil)
	require.NoError(t, err)
	wd, err := os.Getwd()
	require.NoError(t, err)
	require.Equal(t, Config{
		DataDir:            ".xat",
		SchemaPrefix:       "tenant_",
		RolePrefix:         "xat_",
		Guard:              tenancy.GuardRole,
		PoolSize:           16,
		MaxConnsPerTenant:  8,
		PoolLanes:          4,
		PreparedStatements: 2000,
		LogLevel:           slog.LevelInfo,
		LogFormat:          "text",
		Addr:               "127.0.0.1:8080",
		PublicHosts:        []string{"localhost", "127.0.0.1"},
		SessionIdle:        12 * time.Hour,
		SessionMaxAge:      7 * 24 * time.Hour,
		LoginLimitAccount:  10,
		LoginLimitAddr:     100,
		StorageURL:         "file://" + filepath.ToSlash(filepath.Join(wd, ".xat", "files")),
		CacheURL:           "memory://",
	}, c)
	require.Equal(t, "xat_app", c.ServingRole())
}

func TestLoadStorageURL(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{"XAT_DATA_DIR": "/var/lib/xat"}), nil)
	require.NoError(t, err)
	require.Equal(t, "file:///var/lib/xat/files", c.StorageURL)

	for _, v := range []string{
		"file:///srv/files",
		"file://localhost/srv/files",
		"s3://bucket?region=eu-west-1&endpoint=https://s3.example.com",
	} {
		c, err := Load(env(map[string]string{"XAT_STORAGE_URL": v}), nil)
		require.NoError(t, err, v)
		require.Equal(t, v, c.StorageURL)
	}

	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	require.NoError(t, fs.Parse([]string{"--storage-url", "file:///from/flag"}))
	c, err = Load(env(map[string]string{"XAT_STORAGE_URL": "file:///from/env"}), fs)
	require.NoError(t, err)
	require.Equal(t, "file:///from/flag", c.StorageURL)

	for _, bad := range []string{
		"files",
		"file://relative/dir",
		"file:relative",
		"s3://",
		"ftp://host/dir",
		"://",
	} {
		_, err := Load(env(map[string]string{"XAT_STORAGE_URL": bad}), nil)
		var ce *Error
		require.ErrorAs(t, err, &ce, bad)
		require.Equal(t, "XAT_STORAGE_URL", ce.Env, bad)
		require.ErrorContains(t, err, "--storage-url", bad)
	}
}

func TestLoadCacheURL(t *testing.T) {
	t.Parallel()
	for _, v := range []string{"memory://", "memory://?max_entries=100", "redis://cache:6379/0", "rediss://cache:6380"} {
		c, err := Load(env(map[string]string{"XAT_CACHE_URL": v}), nil)
		require.NoError(t, err, v)
		require.Equal(t, v, c.CacheURL)
	}

	fs := pflag.NewFlagSet("test", pflag.ContinueOnError)
	AddFlags(fs)
	require.NoError(t, fs.Parse([]string{"--cache-url", "redis://from-flag:6379"}))
	c, err := Load(env(map[string]string{"XAT_CACHE_URL": "memory://"}), fs)
	require.NoError(t, err)
	require.Equal(t, "redis://from-flag:6379", c.CacheURL)

	for _, bad := range []string{"memcached://host", "cache", "://"} {
		_, err := Load(env(map[string]string{"XAT_CACHE_URL": bad}), nil)
		var ce *Error
		require.ErrorAs(t, err, &ce, bad)
		require.Equal(t, "XAT_CACHE_URL", ce.Env, bad)
		require.ErrorContains(t, err, "--cache-url", bad)
	}
}

func TestLoadServerSettings(t *testing.T) {
	t.Parallel()
	c, err := Load(env(map[string]string{
		"XAT_ADDR":             "0.0.0.0:9000",
		"XAT_PUBLIC_HOSTS":     "Admin.Example.com., localhost:8080",
		"XAT_TRUSTED_PROXIES":  "10.0.0.0/8, 192.168.1.7",
		"XAT_PATH_PREFIX":      "true",
		"XAT_SECURE_COOKIES":   "1",
		"XAT_SESSION_IDLE":     "30m",
		"XAT_SESSION_MAX_AGE":  "24h",
		"XAT_LOGIN_LIMIT_ADDR": "5000",
	}), nil)
	require.NoError(t, err)
	require.Equal(t, 5000, c.LoginLimitAddr)
	require.Equal(t, 10, c.LoginLimitAccount)
	require.Equal(t, 30*time.Minute, c.SessionIdle)
	require.Equal(t, 24*time.Hour, c.SessionMaxAge)
	require.Equal(t, "0.0.0.0:9000", c.Addr)
	require.Equal(t, []string{"admin.example.com", "localhost"}, c.PublicHosts)
	require.Equal(t, "10.0.0.0/8", c.TrustedProxies[0].String())
	require.Equal(t, "192.168.1.7/32", c.TrustedProxies[1].String())
	require.True(t, c.PathPrefix)
	require.True(t, c.SecureCookies)

	for name, value := range map[string]string{
		"XAT_ADDR":                "no-port",
		"XAT_TRUSTED_PROXIES":     "10.0.0.0/33",
		"XAT_PATH_PREFIX":         "maybe",
		"XAT_SESSION_IDLE":        "10s",
		"XAT_SESSION_MAX_AGE":     "a week",
		"XAT_LOGIN_LIMIT_ACCOUNT": "0",
		"XAT_LOGIN_LIMIT_ADDR":    "lots",
	} {
		_, err := Load(env(map[string]string{name: value}), nil)
		require.ErrorContains(t, err, name, value)
	}
	_, err = Load(env(map[string]string{"XAT_SESSION_IDLE": "48h", "XAT_SESSION_MAX_AGE": "24h"}), nil)
	require.ErrorContains(t, err, "XAT_SESSION_IDLE")

	c, err = Load(env(nil), nil)
	require.NoError(t, err)
	require.Equal(t, 12*time.Hour, c.SessionIdle)
	require.Equal(t, 7*24*time.Hour, c.SessionMaxAge)
}

func TestLoad(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		check func(t *testing.T, c Config)
	}{
		{
			name: "environment",
			env: map[string]string{
				"DATABASE_URL":             "postgres://owner:secret@db.internal:5432/xat",
				"XAT_DATA_DIR":             "/var/lib/xat",
				"XAT_SCHEMA_PREFIX":        "p_",
				"XAT_ROLE_PREFIX":          "prod_",
				"XAT_GUARD":                "policy",
				"XAT_POOL_SIZE":            "40",
				"XAT_MAX_CONNS_PER_TENANT": "4",
				"XAT_POOL_LANES":           "2",
				"XAT_PREPARED_STATEMENTS":  "0",
				"XAT_LOG_LEVEL":            "DEBUG",
				"XAT_LOG_FORMAT":           "json",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "/var/lib/xat", c.DataDir)
				require.Equal(t, "p_", c.SchemaPrefix)
				require.Equal(t, "prod_app", c.ServingRole())
				require.Equal(t, tenancy.GuardPolicy, c.Guard)
				require.Equal(t, 40, c.PoolSize)
				require.Equal(t, 4, c.MaxConnsPerTenant)
				require.Equal(t, 2, c.PoolLanes)
				require.Equal(t, 2, c.Tenancy().Lanes)
				require.Equal(t, 0, c.PreparedStatements)
				require.Negative(t, c.Tenancy().StatementsPerConn, "0 turns preparation off")
				require.Equal(t, slog.LevelDebug, c.LogLevel)
				require.Equal(t, "json", c.LogFormat)
				require.Equal(t, "postgres://prod_app@db.internal:5432/xat", c.ServingDatabaseURL)
			},
		},
		{
			name:  "flags win over environment",
			env:   map[string]string{"XAT_POOL_SIZE": "40", "XAT_GUARD": "policy"},
			flags: []string{"--pool-size=10", "--guard=role"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 10, c.PoolSize)
				require.Equal(t, 5, c.MaxConnsPerTenant)
				require.Equal(t, tenancy.GuardRole, c.Guard)
			},
		},
		{
			name: "empty variables count as unset",
			env:  map[string]string{"XAT_POOL_SIZE": "", "XAT_GUARD": " ", "XAT_DATA_DIR": ""},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 16, c.PoolSize)
				require.Equal(t, tenancy.GuardRole, c.Guard)
				require.Equal(t, ".xat", c.DataDir)
			},
		},
		{
			name: "empty schema prefix means none",
			env:  map[string]string{"XAT_SCHEMA_PREFIX": ""},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "", c.SchemaPrefix)
			},
		},
		{
			name: "pool of one",
			env:  map[string]string{"XAT_POOL_SIZE": "1"},
			check: func(t *testing.T, c Config) {
				require.Equal(t, 1, c.MaxConnsPerTenant)
				require.Equal(t, 1, c.PoolLanes)
			},
		},
		{
			name: "explicit serving connection",
			env: map[string]string{
				"DATABASE_URL":             "postgres://owner:secret@db/xat",
				"XAT_SERVING_DATABASE_URL": "postgres://xat_app:other@pgbouncer/xat",
			},
			check: func(t *testing.T, c Config) {
				require.Equal(t, "postgres://xat_app:other@pgbouncer/xat", c.ServingDatabaseURL)
			},
		},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := pflag.NewFlagSet("xat", pflag.ContinueOnError)
			AddFlags(fs)
			require.NoError(t, fs.Parse(tt.flags))
			c, err := Load(env(tt.env), fs)
			require.NoError(t, err)
			tt.check(t, c)
		})
	}
}

func TestLoadRejects(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name  string
		env   map[string]string
		flags []string
		want  string
	}{
		{"guard", map[string]string{"XAT_GUARD": "rls"}, nil,
			`XAT_GUARD (--guard): unknown guard "rls": want role or policy`},
		{"guard flag", nil, []string{"--guard", "none"},
			`XAT_GUARD (--guard): unknown guard "none": want role or policy`},
		{"pool size not a number", map[string]string{"XAT_POOL_SIZE": "many"}, nil,
			`XAT_POOL_SIZE (--pool-size): invalid value "many": want a whole number from 1 to 1000`},
		{"pool size zero", map[string]string{"XAT_POOL_SIZE": "0"}, nil,
			`XAT_POOL_SIZE (--pool-size): invalid value "0": want a whole number from 1 to 1000`},
		{"tenant share above pool", map[string]string{"XAT_POOL_SIZE": "4", "XAT_MAX_CONNS_PER_TENANT": "5"}, nil,
			`XAT_MAX_CONNS_PER_TENANT (--max-conns-per-tenant): invalid value "5": want a whole number from 1 to 4`},
		{"more lanes than connections", map[string]string{"XAT_POOL_SIZE": "4", "XAT_POOL_LANES": "5"}, nil,
			`XAT_POOL_LANES (--pool-lanes): invalid value "5": want a whole number from 1 to 4`},
		{"log level", map[string]string{"XAT_LOG_LEVEL": "verbose"}, nil,
			`XAT_LOG_LEVEL (--log-level): invalid value "verbose": want debug, info, warn or error`},
		{"log format", nil, []string{"--log-format=yaml"},
			`XAT_LOG_FORMAT (--log-format): invalid value "yaml": want text or json`},
		{"schema prefix", map[string]string{"XAT_SCHEMA_PREFIX": "Tenant-"}, nil,
			`XAT_SCHEMA_PREFIX (--schema-prefix): invalid value "Tenant-": want a lowercase letter, then lowercase letters, digits or underscores`},
		{"schema prefix pg_", map[string]string{"XAT_SCHEMA_PREFIX": "pg_t"}, nil,
			`XAT_SCHEMA_PREFIX (--schema-prefix): invalid value "pg_t": must not start with pg_`},
		{"role prefix", map[string]string{"XAT_ROLE_PREFIX": "xat-"}, nil,
			`XAT_ROLE_PREFIX (--role-prefix): invalid value "xat-": want lowercase letters, digits or underscores`},
		{"database url", map[string]string{"DATABASE_URL": "host=db port=notaport"}, nil,
			`DATABASE_URL (--database-url): cannot parse the connection string`},
		{"serving url without database url", map[string]string{"XAT_SERVING_DATABASE_URL": "postgres://xat_app@db/xat"}, nil,
			`XAT_SERVING_DATABASE_URL (--serving-database-url): is set without DATABASE_URL`},
		{"serving url logs in as another role", map[string]string{
			"DATABASE_URL":             "postgres://owner@db/xat",
			"XAT_SERVING_DATABASE_URL": "postgres://owner@db/xat",
		}, nil,
			`XAT_SERVING_DATABASE_URL (--serving-database-url): logs in as "owner", but the serving role is "xat_app"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			fs := pflag.NewFlagSet("xat", pflag.ContinueOnError)
			AddFlags(fs)
			require.NoError(t, fs.Parse(tt.flags))
			_, err := Load(env(tt.env), fs)
			require.ErrorContains(t, err, tt.want)
			var cerr *Error
			require.True(t, errors.As(err, &cerr))
		})
	}
}

func TestLoadReportsEveryError(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"XAT_GUARD": "x", "XAT_LOG_FORMAT": "x"}), nil)
	require.ErrorContains(t, err, "XAT_GUARD")
	require.ErrorContains(t, err, "XAT_LOG_FORMAT")
}

func TestLoadDoesNotEchoPasswords(t *testing.T) {
	t.Parallel()
	_, err := Load(env(map[string]string{"DATABASE_URL": "postgres://u:hunter2@db:notaport/x"}), nil)
	require.Error(t, err)
	require.NotContains(t, err.Error(), "hunter2")
}

func TestServingURL(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, in, want string
	}{
		{"url with password", "postgres://owner:secret@db.internal:5432/xat?sslmode=require",
			"postgres://xat_app@db.internal:5432/xat?sslmode=require"},
		{"url without user", "postgresql://localhost/xat",
			"postgresql://xat_app@localhost/xat"},
		{"url with user and password parameters", "postgres:///xat?host=%2Ftmp&user=owner&password=secret",
			"postgres://xat_app@/xat?host=%2Ftmp"},
		{"keyword/value", "host=/tmp/pg port=5433 user=postgres dbname=xat sslmode=disable",
			"host=/tmp/pg port=5433 dbname=xat sslmode=disable user=xat_app"},
		{"keyword/value with password and spaces", "host = db  user=owner password='se cr\\'et' dbname=xat",
			"host=db dbname=xat user=xat_app"},
		{"keyword/value without user", "host=db dbname=xat",
			"host=db dbname=xat user=xat_app"},
		{"keyword/value with quoted path", `host='/tmp/my dir' dbname=xat`,
			`host='/tmp/my dir' dbname=xat user=xat_app`},
		{"keyword/value repeated user", "user=a host=db user=b",
			"host=db user=xat_app"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Parallel()
			got, err := ServingURL(tt.in, "xat_app")
			require.NoError(t, err)
			require.Equal(t, tt.want, got)
		})
	}
}

func TestServingURLRejects(t *testing.T) {
	t.Parallel()
	for _, in := range []string{"host=db password='open", "justtext", "=x"} {
		_, err := ServingURL(in, "xat_app")
		require.Error(t, err, in)
	}
}

func TestSplitPassword(t *testing.T) {
	t.Parallel()
	tests := []struct {
		in, rest, password string
	}{
		{"postgres://app:s3cret@db/xat", "postgres://app@db/xat", "s3cret"},
		{"postgres://app@db/xat?password=p%20w", "postgres://app@db/xat", "p w"},
		{"host=db user=app password='a b' dbname=xat", "host=db user=app dbname=xat", "a b"},
		{"host=db user=app", "host=db user=app", ""},
	}
	for _, tt := range tests {
		rest, password, err := SplitPassword(tt.in)
		require.NoError(t, err)
		require.Equal(t, tt.rest, rest)
		require.Equal(t, tt.password, password)
	}
}
