package tenancy

import (
	"errors"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestValidateSchemaName(t *testing.T) {
	t.Parallel()
	tests := []struct {
		name, prefix string
		ok           bool
	}{
		{"acme", "", true},
		{"tenant_acme_2", "tenant_", true},
		{strings.Repeat("a", 63), "", true},
		{strings.Repeat("a", 64), "", false},
		{"", "", false},
		{"public", "", false},
		{"information_schema", "", false},
		{"pg_catalog", "", false},
		{"pg_acme", "", false},
		{"Acme", "", false},
		{"ACME", "", false},
		{"1acme", "", false},
		{"_acme", "", false},
		{"acme;drop", "", false},
		{`acme"; DROP SCHEMA public; --`, "", false},
		{"acme'", "", false},
		{"acme-corp", "", false},
		{"acme corp", "", false},
		{"acmé", "", false},
		{"acme\x00", "", false},
		{"acme", "tenant_", false},
		{"tenant_", "tenant_", false},
	}
	for _, tt := range tests {
		err := ValidateSchemaName(tt.name, tt.prefix)
		if tt.ok {
			require.NoError(t, err, tt.name)
			continue
		}
		require.ErrorIs(t, err, ErrInvalidSchema, tt.name)
		var ne *NameError
		require.True(t, errors.As(err, &ne))
		require.NotEmpty(t, ne.Reason)
	}
}

func TestValidateDomain(t *testing.T) {
	t.Parallel()
	tests := []struct {
		domain string
		ok     bool
	}{
		{"acme.example.com", true},
		{"acme.localhost", true},
		{"localhost", true},
		{"a-b.c", true},
		{"", false},
		{"ACME.example.com", false},
		{"acme.example.com.", false},
		{"acme.example.com:8080", false},
		{"127.0.0.1", false},
		{"-acme.com", false},
		{"acme-.com", false},
		{"acme..com", false},
		{"acme_corp.com", false},
		{"acme.com/evil", false},
		{"acme.com'; --", false},
		{strings.Repeat("a", 64) + ".com", false},
		{strings.Repeat("abcdefghi.", 26) + "com", false},
	}
	for _, tt := range tests {
		err := ValidateDomain(tt.domain)
		if tt.ok {
			require.NoError(t, err, tt.domain)
		} else {
			require.ErrorIs(t, err, ErrInvalidDomain, tt.domain)
		}
	}
}

func TestNormalizeHost(t *testing.T) {
	t.Parallel()
	tests := map[string]string{
		"Acme.Example.COM":      "acme.example.com",
		"acme.example.com.":     "acme.example.com",
		"acme.example.com:8443": "acme.example.com",
		"ACME.example.com.:80":  "acme.example.com",
		" acme.example.com ":    "acme.example.com",
		"[::1]:8080":            "::1",
		"acme.localhost":        "acme.localhost",
	}
	for in, want := range tests {
		require.Equal(t, want, NormalizeHost(in), in)
	}
}

func TestSchemaFromName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "tenant_acme_corp", SchemaFromName("tenant_", "Acme Corp."))
	require.Equal(t, "acme_corp", SchemaFromName("", "  Acme -- Corp "))
	require.Equal(t, "t_42_inc", SchemaFromName("", "42 Inc"))
	require.Error(t, ValidateSchemaName(SchemaFromName("", "!!!"), ""))
}

func TestRoleName(t *testing.T) {
	t.Parallel()
	require.Equal(t, "xat_acme", roleName("xat_", "acme"))

	long := strings.Repeat("a", 63)
	r1 := roleName("xat_", long)
	r2 := roleName("xat_", long[:62]+"b")
	require.LessOrEqual(t, len(r1), 63)
	require.NotEqual(t, r1, r2, "truncated role names must stay distinct")
	require.NoError(t, ValidateSchemaName(r1, ""))
}
