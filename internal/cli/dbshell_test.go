package cli

import (
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
)

func TestPGOptions(t *testing.T) {
	t.Parallel()
	cfg := tenancy.Config{RolePrefix: "xat_", Guard: tenancy.GuardRole}
	require.Equal(t,
		"-c search_path=tenant_acme,public -c role=xat_tenant_acme "+
			"-c tenancy.tenant=tenant_acme -c application_name=xat:dbshell:tenant_acme -c xat.role=system",
		pgOptions(cfg, "tenant_acme"))

	cfg.Guard = tenancy.GuardPolicy
	require.Equal(t,
		"-c search_path=tenant_acme,public "+
			"-c tenancy.tenant=tenant_acme -c application_name=xat:dbshell:tenant_acme -c xat.role=system",
		pgOptions(cfg, "tenant_acme"))
}

func TestShellEnv(t *testing.T) {
	t.Parallel()
	env := shellEnv([]string{"HOME=/root", "PGOPTIONS=-c role=postgres", "PGPASSWORD=old"},
		"-c search_path=tenant_a,public", "tenant_a", "s3cret")
	require.Equal(t, []string{
		"HOME=/root",
		"PGOPTIONS=-c search_path=tenant_a,public",
		"PGAPPNAME=xat:dbshell:tenant_a",
		"PGPASSWORD=s3cret",
	}, env)

	env = shellEnv([]string{"PGPASSWORD=old"}, "", "tenant_a", "")
	require.NotContains(t, env, "PGPASSWORD=old")
}
