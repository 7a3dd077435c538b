// Package migrations embeds XAT's SQL migrations: shared/ applies once to
// the public schema, tenant/ to every partner's schema. Files are numbered
// and never edited once released; a change is a new file, written
// expand/contract so that the application keeps working while part of the
// fleet is one version behind.
package migrations

import (
	"embed"

	"github.com/xatlabs/xat/tenancy"
)

//go:embed shared/*.sql tenant/*.sql
var files embed.FS

// Shared returns the shared migration set.
func Shared() ([]tenancy.Migration, error) { return tenancy.LoadMigrations(files, "shared") }

// Tenant returns the tenant migration set.
func Tenant() ([]tenancy.Migration, error) { return tenancy.LoadMigrations(files, "tenant") }
