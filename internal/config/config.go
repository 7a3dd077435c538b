// Package config reads the xat command's configuration, 12-factor style:
// each setting comes from an environment variable (DATABASE_URL and XAT_*)
// and has a matching command-line flag that wins over it.
//
//	DATABASE_URL              --database-url              owner connection (provisioning, migrations)
//	XAT_SERVING_DATABASE_URL  --serving-database-url      serving role's connection
//	XAT_DATA_DIR              --data-dir                  local cluster home (default .xat)
//	XAT_SCHEMA_PREFIX         --schema-prefix             tenant schema prefix (default tenant_)
//	XAT_ROLE_PREFIX           --role-prefix               database role prefix (default xat_)
//	XAT_GUARD                 --guard                     role or policy (default role)
//	XAT_POOL_SIZE             --pool-size                 serving pool size (default 16)
//	XAT_MAX_CONNS_PER_TENANT  --max-conns-per-tenant      per-tenant share (default pool/2)
//	XAT_POOL_LANES            --pool-lanes                lanes the pool is split into, by tenant (default pool/4, 1 for none)
//	XAT_PREPARED_STATEMENTS   --prepared-statements       tenant statements kept prepared per connection, 0 for none (default 2000)
//	XAT_LOG_LEVEL             --log-level                 debug, info, warn or error (default info)
//	XAT_LOG_FORMAT            --log-format                text or json (default text)
//	XAT_ADDR                  --addr                      HTTP listen address (default 127.0.0.1:8080)
//	XAT_PUBLIC_HOSTS          --public-hosts              comma-separated platform hosts (default localhost,127.0.0.1)
//	XAT_TRUSTED_PROXIES       --trusted-proxies           comma-separated CIDRs whose X-Forwarded-Host is believed
//	XAT_PATH_PREFIX           --path-prefix               also serve tenants under /t/<schema>/ on public hosts (default false)
//	XAT_SECURE_COOKIES        --secure-cookies            mark session cookies Secure (default false)
//	XAT_SESSION_IDLE          --session-idle              a session ends after this long unused (default 12h)
//	XAT_SESSION_MAX_AGE       --session-max-age           and this long after login, however used (default 168h)
//	XAT_LOGIN_LIMIT_ACCOUNT   --login-limit-account       login attempts per account per 15 minutes, all instances (default 10)
//	XAT_LOGIN_LIMIT_ADDR      --login-limit-addr          login attempts per client address per 15 minutes (default 100)
//	XAT_STORAGE_URL           --storage-url               uploaded files: file:///dir or s3://bucket (default file://<data dir>/files)
//	XAT_CACHE_URL             --cache-url                 cache: memory:// or redis://host:port/db (default memory://)
//
// An empty environment variable counts as unset, except XAT_SCHEMA_PREFIX,
// where an empty value means tenant schemas need no prefix.
package config

import (
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/netip"
	"net/url"
	"path"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"github.com/jackc/pgx/v5/pgconn"
	"github.com/spf13/pflag"

	"github.com/xatlabs/xat/tenancy"
)

// Config is the configuration of one xat process. Load fills every field,
// defaults included.
type Config struct {
	// DatabaseURL is the connection of the role that owns the tenant
	// schemas: it provisions tenants and runs migrations. Empty means a
	// private local cluster under DataDir.
	DatabaseURL string

	// ServingDatabaseURL is the connection of the serving role, which does
	// all tenant work. When XAT_SERVING_DATABASE_URL is not set it is
	// derived from DatabaseURL (see ServingURL), which only works where the
	// server trusts the serving role without a password (trust, peer or
	// certificate authentication); production sets it explicitly. Empty
	// when DatabaseURL is.
	ServingDatabaseURL string

	// DataDir holds the local cluster, in DataDir/pgdata. Default ".xat",
	// relative to the working directory.
	DataDir string

	// SchemaPrefix starts every tenant schema name. Default "tenant_".
	SchemaPrefix string

	// RolePrefix starts every database role xat creates. Roles are global
	// to a PostgreSQL cluster, so databases sharing one need different
	// prefixes. Default "xat_".
	RolePrefix string

	// Guard is the database guard between tenants. Default tenancy.GuardRole.
	Guard tenancy.Guard

	// PoolSize caps the serving connection pool. Default 16.
	PoolSize int

	// MaxConnsPerTenant caps the pooled connections one tenant may hold.
	// Default PoolSize/2, at least 1.
	MaxConnsPerTenant int

	// PoolLanes splits the serving pool into lanes, each tenant's work
	// running on its own lane (see tenancy.Config.Lanes). Default
	// PoolSize/4, at least 1; 1 turns lanes off.
	PoolLanes int

	// PreparedStatements caps the tenant statements kept prepared on each
	// serving connection; 0 turns preparation off (for a connection pooler
	// in transaction mode that cannot carry prepared statements). Default
	// 2000.
	PreparedStatements int

	// LogLevel and LogFormat shape the logs. Defaults info and text.
	LogLevel  slog.Level
	LogFormat string

	// Addr is the HTTP listen address. Default "127.0.0.1:8080".
	Addr string

	// PublicHosts serve the platform routes; every other host must be a
	// tenant domain. Default localhost and 127.0.0.1.
	PublicHosts []string

	// TrustedProxies are the peers whose X-Forwarded-Host is believed.
	// Default none.
	TrustedProxies []netip.Prefix

	// PathPrefix also serves tenants under /t/<schema>/ on public hosts.
	PathPrefix bool

	// SecureCookies marks session cookies Secure; set it behind TLS.
	SecureCookies bool

	// SessionIdle ends a login session after this long without use.
	// Default 12h.
	SessionIdle time.Duration

	// SessionMaxAge ends a login session this long after the login,
	// however often it is used. Default 7 days (168h).
	SessionMaxAge time.Duration

	// LoginLimitAccount and LoginLimitAddr are how many login attempts
	// one account, and one client address, may make per 15 minutes,
	// counted across every instance.
	LoginLimitAccount, LoginLimitAddr int

	// StorageURL says where uploaded files are kept (see storage.Open):
	// file:///absolute/dir for local disk, s3://bucket?... for an
	// S3-compatible bucket. Default file://<DataDir>/files, with DataDir
	// made absolute.
	StorageURL string

	// CacheURL says where cached entries are kept (see cache.Open):
	// memory:// for this process alone, redis:// or rediss:// for a cache
	// shared by every instance. Default "memory://".
	CacheURL string
}

// ServingRole returns the name of the login role that serves tenant work:
// RolePrefix followed by "app".
func (c Config) ServingRole() string { return c.RolePrefix + "app" }

// Tenancy returns the tenancy configuration these settings describe. The
// caller adds the migration sets and the logger.
func (c Config) Tenancy() tenancy.Config {
	return tenancy.Config{
		SchemaPrefix:      c.SchemaPrefix,
		RolePrefix:        c.RolePrefix,
		ServingRole:       c.ServingRole(),
		Guard:             c.Guard,
		MaxConnsPerTenant: c.MaxConnsPerTenant,
		Lanes:             c.PoolLanes,
		StatementsPerConn: statementsPerConn(c.PreparedStatements),
		AppName:           "xat",
	}
}

// NewLogger returns a logger writing to w in the configured format, from
// the configured level up.
func (c Config) NewLogger(w io.Writer) *slog.Logger {
	opts := &slog.HandlerOptions{Level: c.LogLevel}
	if c.LogFormat == "json" {
		return slog.New(slog.NewJSONHandler(w, opts))
	}
	return slog.New(slog.NewTextHandler(w, opts))
}

// Error reports a setting whose value was rejected. It names the
// environment variable and the flag, so the message helps whichever the
// user set.
type Error struct {
	Env    string
	Flag   string
	Reason string
}

func (e *Error) Error() string {
	return fmt.Sprintf("%s (--%s): %s", e.Env, e.Flag, e.Reason)
}

// setting is one configuration value: its variable, flag, default and help.
// kind names the kind of value in the flag's help.
type setting struct {
	env, flag, kind, def, usage string
}

var (
	databaseURL = setting{"DATABASE_URL", "database-url", "url", "",
		"owner connection for provisioning and migrations (default: a local cluster under --data-dir)"}
	servingURL = setting{"XAT_SERVING_DATABASE_URL", "serving-database-url", "url", "",
		"serving role's connection (default: DATABASE_URL as the serving role, without password)"}
	dataDir = setting{"XAT_DATA_DIR", "data-dir", "dir", ".xat",
		"directory of the local PostgreSQL cluster, used without DATABASE_URL"}
	schemaPrefix = setting{"XAT_SCHEMA_PREFIX", "schema-prefix", "prefix", "tenant_",
		"prefix every tenant schema name must start with"}
	rolePrefix = setting{"XAT_ROLE_PREFIX", "role-prefix", "prefix", "xat_",
		"prefix of every database role xat creates"}
	guard = setting{"XAT_GUARD", "guard", "guard", "role",
		"database guard between tenants: role or policy"}
	poolSize = setting{"XAT_POOL_SIZE", "pool-size", "int", "16",
		"maximum connections of the serving pool"}
	maxConnsPerTenant = setting{"XAT_MAX_CONNS_PER_TENANT", "max-conns-per-tenant", "int", "",
		"maximum pooled connections one tenant may hold (default: half the pool)"}
	poolLanes = setting{"XAT_POOL_LANES", "pool-lanes", "int", "",
		"lanes the serving pool is split into, each tenant's work running on one (default: one per 4 connections; 1 for none)"}
	preparedStatements = setting{"XAT_PREPARED_STATEMENTS", "prepared-statements", "int", "2000",
		"tenant statements kept prepared on each serving connection; 0 turns preparation off (PgBouncer in transaction mode before 1.21)"}
	logLevel = setting{"XAT_LOG_LEVEL", "log-level", "level", "info",
		"log level: debug, info, warn or error"}
	logFormat = setting{"XAT_LOG_FORMAT", "log-format", "format", "text",
		"log format: text or json"}
	addr = setting{"XAT_ADDR", "addr", "host:port", "127.0.0.1:8080",
		"HTTP listen address"}
	publicHosts = setting{"XAT_PUBLIC_HOSTS", "public-hosts", "hosts", "localhost,127.0.0.1",
		"comma-separated hosts that serve the platform routes"}
	trustedProxies = setting{"XAT_TRUSTED_PROXIES", "trusted-proxies", "cidrs", "",
		"comma-separated CIDRs of proxies whose X-Forwarded-Host is believed"}
	pathPrefix = setting{"XAT_PATH_PREFIX", "path-prefix", "bool", "false",
		"also serve tenants under /t/<schema>/ on public hosts"}
	secureCookies = setting{"XAT_SECURE_COOKIES", "secure-cookies", "bool", "false",
		"mark session cookies Secure (behind TLS)"}
	sessionIdle = setting{"XAT_SESSION_IDLE", "session-idle", "duration", "12h",
		"a login session ends after this long unused"}
	sessionMaxAge = setting{"XAT_SESSION_MAX_AGE", "session-max-age", "duration", "168h",
		"a login session ends this long after the login, however often it is used"}
	loginLimitAccount = setting{"XAT_LOGIN_LIMIT_ACCOUNT", "login-limit-account", "n", "10",
		"login attempts one account may make per 15 minutes, counted across every instance"}
	loginLimitAddr = setting{"XAT_LOGIN_LIMIT_ADDR", "login-limit-addr", "n", "100",
		"login attempts one client address may make per 15 minutes (raise it for users behind one NAT)"}
	storageURL = setting{"XAT_STORAGE_URL", "storage-url", "url", "",
		"where uploaded files are kept: file:///dir or s3://bucket (default: file://<data dir>/files)"}
	cacheURL = setting{"XAT_CACHE_URL", "cache-url", "url", "memory://",
		"where cached entries are kept: memory:// or redis://host:port/db"}

	settings = []setting{
		databaseURL, servingURL, dataDir, schemaPrefix, rolePrefix,
		guard, poolSize, maxConnsPerTenant, poolLanes, preparedStatements, logLevel, logFormat,
		addr, publicHosts, trustedProxies, pathPrefix, secureCookies, sessionIdle, sessionMaxAge,
		loginLimitAccount, loginLimitAddr, storageURL, cacheURL,
	}
)

// AddFlags registers the flag of every setting on fs. Their help names the
// environment variable each one overrides. Values are checked by Load, not
// when the flags are parsed, so that a bad flag and a bad variable get the
// same message.
func AddFlags(fs *pflag.FlagSet) {
	for _, s := range settings {
		v := &flagValue{kind: s.kind, value: s.def}
		fs.Var(v, s.flag, s.usage+" [$"+s.env+"]")
		fs.Lookup(s.flag).DefValue = s.def
	}
}

// flagValue is a string flag whose help shows the kind of value it takes.
type flagValue struct{ kind, value string }

func (v *flagValue) String() string     { return v.value }
func (v *flagValue) Set(s string) error { v.value = s; return nil }
func (v *flagValue) Type() string       { return v.kind }

// Load reads the configuration. A flag set on fs wins over the environment
// variable lookupEnv finds (os.LookupEnv in production), which wins over the
// default. fs may be nil, and flags not registered on it are ignored. Every
// rejected value is reported, each as an *Error, joined into one error.
func Load(lookupEnv func(string) (string, bool), fs *pflag.FlagSet) (Config, error) {
	r := &reader{lookupEnv: lookupEnv, fs: fs}
	c := Config{
		DatabaseURL:  r.value(databaseURL),
		DataDir:      r.value(dataDir),
		SchemaPrefix: r.valueOrEmpty(schemaPrefix),
		RolePrefix:   r.value(rolePrefix),
		LogFormat:    r.value(logFormat),
	}

	if c.DatabaseURL != "" {
		if _, err := pgconn.ParseConfig(c.DatabaseURL); err != nil {
			r.fail(databaseURL, "cannot parse the connection string: "+err.Error())
		}
	}
	r.check(schemaPrefix, checkSchemaPrefix(c.SchemaPrefix))
	r.check(rolePrefix, checkRolePrefix(c.RolePrefix))

	g, err := tenancy.ParseGuard(r.value(guard))
	r.check(guard, err)
	c.Guard = g

	c.PoolSize = r.int(poolSize, 1, 1000, 16)
	c.MaxConnsPerTenant = r.int(maxConnsPerTenant, 1, max(1, c.PoolSize), max(1, c.PoolSize/2))
	c.PoolLanes = r.int(poolLanes, 1, c.PoolSize, max(1, c.PoolSize/4))
	c.PreparedStatements = r.int(preparedStatements, 0, 1_000_000, 2000)

	c.LogLevel, err = parseLevel(r.value(logLevel))
	r.check(logLevel, err)
	if c.LogFormat != "text" && c.LogFormat != "json" {
		r.fail(logFormat, fmt.Sprintf("invalid value %q: want text or json", c.LogFormat))
	}

	c.Addr = r.value(addr)
	if _, _, err := net.SplitHostPort(c.Addr); err != nil {
		r.fail(addr, fmt.Sprintf("invalid value %q: want host:port", c.Addr))
	}
	for _, h := range strings.Split(r.value(publicHosts), ",") {
		if h = tenancy.NormalizeHost(h); h != "" {
			c.PublicHosts = append(c.PublicHosts, h)
		}
	}
	for _, p := range strings.Split(r.valueOrEmpty(trustedProxies), ",") {
		if p = strings.TrimSpace(p); p == "" {
			continue
		}
		prefix, err := netip.ParsePrefix(p)
		if err != nil {
			if a, aerr := netip.ParseAddr(p); aerr == nil {
				prefix, err = a.Prefix(a.BitLen())
			}
		}
		if err != nil {
			r.fail(trustedProxies, fmt.Sprintf("invalid value %q: want an address or CIDR", p))
			continue
		}
		c.TrustedProxies = append(c.TrustedProxies, prefix)
	}
	c.PathPrefix = r.bool(pathPrefix)
	c.SecureCookies = r.bool(secureCookies)
	c.SessionIdle = r.duration(sessionIdle, time.Minute, 12*time.Hour)
	c.SessionMaxAge = r.duration(sessionMaxAge, time.Minute, 7*24*time.Hour)
	if c.SessionIdle > c.SessionMaxAge {
		r.fail(sessionIdle, fmt.Sprintf("%s is longer than %s (%s)", c.SessionIdle, sessionMaxAge.env, c.SessionMaxAge))
	}
	c.LoginLimitAccount = r.int(loginLimitAccount, 1, 1_000_000, 10)
	c.LoginLimitAddr = r.int(loginLimitAddr, 1, 1_000_000, 100)
	c.StorageURL = r.storageURL(c.DataDir)
	c.CacheURL = r.cacheURL()

	c.ServingDatabaseURL = r.servingURL(c)
	return c, errors.Join(r.errs...)
}

// reader resolves settings and collects what it rejects.
type reader struct {
	lookupEnv func(string) (string, bool)
	fs        *pflag.FlagSet
	errs      []error
}

// raw returns the value of s from its flag or its variable, and whether
// either was set.
func (r *reader) raw(s setting) (string, bool) {
	if r.fs != nil && r.fs.Changed(s.flag) {
		return r.fs.Lookup(s.flag).Value.String(), true
	}
	if r.lookupEnv != nil {
		if v, ok := r.lookupEnv(s.env); ok {
			return v, true
		}
	}
	return "", false
}

// value returns the value of s, its default when it is unset or empty.
func (r *reader) value(s setting) string {
	if v, ok := r.raw(s); ok && strings.TrimSpace(v) != "" {
		return strings.TrimSpace(v)
	}
	return s.def
}

// valueOrEmpty is like value but keeps an empty value that was set.
func (r *reader) valueOrEmpty(s setting) string {
	if v, ok := r.raw(s); ok {
		return strings.TrimSpace(v)
	}
	return s.def
}

func (r *reader) fail(s setting, reason string) {
	r.errs = append(r.errs, &Error{Env: s.env, Flag: s.flag, Reason: reason})
}

func (r *reader) check(s setting, err error) {
	if err != nil {
		r.fail(s, err.Error())
	}
}

// bool parses s as true or false.
func (r *reader) bool(s setting) bool {
	v := r.value(s)
	b, err := strconv.ParseBool(v)
	if err != nil {
		r.fail(s, fmt.Sprintf("invalid value %q: want true or false", v))
	}
	return b
}

// int parses s as a whole number within [lo, hi]; def when unset.
func (r *reader) int(s setting, lo, hi, def int) int {
	v := r.value(s)
	if v == "" {
		return def
	}
	n, err := strconv.Atoi(v)
	if err != nil || n < lo || n > hi {
		r.fail(s, fmt.Sprintf("invalid value %q: want a whole number from %d to %d", v, lo, hi))
		return def
	}
	return n
}

// duration parses s as a Go duration ("90m", "12h") of at least lo; def
// when unset.
func (r *reader) duration(s setting, lo, def time.Duration) time.Duration {
	v := r.value(s)
	if v == "" {
		return def
	}
	d, err := time.ParseDuration(v)
	if err != nil || d < lo {
		r.fail(s, fmt.Sprintf("invalid value %q: want a duration of at least %s, such as 12h", v, lo))
		return def
	}
	return d
}

// storageURL returns the file storage URL, checked for its form only
// (storage.Open checks the rest when it opens it), or the default under
// dataDir.
func (r *reader) storageURL(dataDir string) string {
	v := r.value(storageURL)
	if v == "" {
		abs, err := filepath.Abs(dataDir)
		if err != nil {
			r.fail(storageURL, "cannot derive the default from the data directory: "+err.Error())
			return ""
		}
		return (&url.URL{Scheme: "file", Path: filepath.ToSlash(filepath.Join(abs, "files"))}).String()
	}

	u, err := url.Parse(v)
	switch {
	case err != nil:
		r.fail(storageURL, fmt.Sprintf("invalid value %q: not a URL", v))
	case u.Scheme == "file" && (u.Host != "" && u.Host != "localhost" || !path.IsAbs(u.Path)):
		r.fail(storageURL, fmt.Sprintf("invalid value %q: want an absolute path, as in file:///var/lib/xat/files", v))
	case u.Scheme == "s3" && u.Host == "":
		r.fail(storageURL, fmt.Sprintf("invalid value %q: want a bucket, as in s3://bucket?region=eu-west-1", v))
	case u.Scheme != "file" && u.Scheme != "s3":
		r.fail(storageURL, fmt.Sprintf("invalid value %q: want a file:// or s3:// URL", v))
	}
	return v
}

// cacheURL returns the cache URL, checked for its scheme only; cache.Open
// checks the rest when it opens it.
func (r *reader) cacheURL() string {
	v := r.value(cacheURL)
	u, err := url.Parse(v)
	switch {
	case err != nil:
		r.fail(cacheURL, fmt.Sprintf("invalid value %q: not a URL", v))
	case u.Scheme != "memory" && u.Scheme != "redis" && u.Scheme != "rediss":
		r.fail(cacheURL, fmt.Sprintf("invalid value %q: want a memory://, redis:// or rediss:// URL", v))
	}
	return v
}

// servingURL returns the explicit serving connection, checked to log in as
// the serving role, or the one derived from DatabaseURL.
func (r *reader) servingURL(c Config) string {
	explicit := r.value(servingURL)
	if explicit == "" {
		if c.DatabaseURL == "" {
			return ""
		}
		derived, err := ServingURL(c.DatabaseURL, c.ServingRole())
		if err != nil {
			r.fail(databaseURL, "cannot derive the serving connection: "+err.Error())
		}
		return derived
	}

	if c.DatabaseURL == "" {
		r.fail(servingURL, "is set without DATABASE_URL; the local cluster derives its own")
		return ""
	}
	pc, err := pgconn.ParseConfig(explicit)
	if err != nil {
		r.fail(servingURL, "cannot parse the connection string: "+err.Error())
		return ""
	}
	if pc.User != c.ServingRole() {
		r.fail(servingURL, fmt.Sprintf("logs in as %q, but the serving role is %q (XAT_ROLE_PREFIX followed by \"app\")",
			pc.User, c.ServingRole()))
	}
	return explicit
}

var (
	schemaPrefixPattern = regexp.MustCompile(`^[a-z][a-z0-9_]*$`)
	rolePrefixPattern   = regexp.MustCompile(`^[a-z_][a-z0-9_]*$`)
)

// maxPrefix keeps room in PostgreSQL's 63-byte identifiers for the names
// the prefixes start.
const maxPrefix = 32

func checkSchemaPrefix(p string) error {
	switch {
	case p == "":
		return nil
	case len(p) > maxPrefix:
		return fmt.Errorf("invalid value %q: at most %d bytes", p, maxPrefix)
	case strings.HasPrefix(p, "pg_"):
		return fmt.Errorf("invalid value %q: must not start with pg_", p)
	case !schemaPrefixPattern.MatchString(p):
		return fmt.Errorf("invalid value %q: want a lowercase letter, then lowercase letters, digits or underscores", p)
	}
	return nil
}

func checkRolePrefix(p string) error {
	switch {
	case len(p) > maxPrefix:
		return fmt.Errorf("invalid value %q: at most %d bytes", p, maxPrefix)
	case strings.HasPrefix(p, "pg_"):
		return fmt.Errorf("invalid value %q: must not start with pg_, which PostgreSQL reserves", p)
	case !rolePrefixPattern.MatchString(p):
		return fmt.Errorf("invalid value %q: want lowercase letters, digits or underscores", p)
	}
	return nil
}

func parseLevel(s string) (slog.Level, error) {
	switch strings.ToLower(s) {
	case "debug":
		return slog.LevelDebug, nil
	case "info":
		return slog.LevelInfo, nil
	case "warn":
		return slog.LevelWarn, nil
	case "error":
		return slog.LevelError, nil
	}
	return 0, fmt.Errorf("invalid value %q: want debug, info, warn or error", s)
}

// statementsPerConn turns the PreparedStatements setting into tenancy's
// StatementsPerConn, where 0 means the default and a negative value none.
func statementsPerConn(n int) int {
	if n == 0 {
		return -1
	}
	return n
}
