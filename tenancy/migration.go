package tenancy

import (
	"fmt"
	"io/fs"
	"path"
	"regexp"
	"sort"
	"strconv"
	"strings"
)

// Migration is one numbered SQL file of a migration set.
type Migration struct {
	Version int
	Name    string
	SQL     string
}

var migrationFile = regexp.MustCompile(`^(\d+)_([a-z0-9_]+)\.sql$`)

// LoadMigrations reads the migrations of one set from dir in fsys. Files are
// named NNNN_name.sql; versions must start at 1 and have no gaps, so that a
// schema's version says exactly which files it has. Other files are an
// error, so that a misnamed migration cannot be skipped silently.
//
// Migration SQL may use three placeholders, replaced by quoted identifiers
// when it runs: {{schema}} (the tenant schema, tenant set only), {{tenants}}
// (the group role of every tenant role: grant it what tenants may read in
// public) and {{serving}} (the serving role).
func LoadMigrations(fsys fs.FS, dir string) ([]Migration, error) {
	entries, err := fs.ReadDir(fsys, dir)
	if err != nil {
		return nil, fmt.Errorf("read migrations %s: %w", dir, err)
	}
	var out []Migration
	for _, e := range entries {
		if e.IsDir() {
			continue
		}
		m := migrationFile.FindStringSubmatch(e.Name())
		if m == nil {
			return nil, fmt.Errorf("migration %s: name must look like 0001_name.sql", path.Join(dir, e.Name()))
		}
		v, _ := strconv.Atoi(m[1])
		body, err := fs.ReadFile(fsys, path.Join(dir, e.Name()))
		if err != nil {
			return nil, fmt.Errorf("read migration %s: %w", e.Name(), err)
		}
		out = append(out, Migration{Version: v, Name: m[2], SQL: string(body)})
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Version < out[j].Version })
	for i, m := range out {
		if m.Version != i+1 {
			return nil, fmt.Errorf("migrations %s: version %d found where %d was expected", dir, m.Version, i+1)
		}
	}
	return out, nil
}

// expand replaces the placeholders of migration SQL.
func (db *DB) expand(sql, schema string) string {
	r := []string{
		"{{tenants}}", quoteIdent(db.cfg.groupRole()),
		"{{serving}}", quoteIdent(db.cfg.ServingRole),
		"{{report}}", quoteIdent(db.cfg.reportRole()),
		"{{report_literal}}", quoteLiteral(db.cfg.reportRole()),
	}
	if schema != "" {
		r = append(r, "{{schema}}", quoteIdent(schema))
	}
	return strings.NewReplacer(r...).Replace(sql)
}

func latest(set []Migration) int {
	if len(set) == 0 {
		return 0
	}
	return set[len(set)-1].Version
}
