package cli

import (
	"bytes"
	"errors"
	"fmt"
	"testing"

	"github.com/stretchr/testify/require"

	"github.com/xatlabs/xat/tenancy"
)

func TestStatusSummary(t *testing.T) {
	t.Parallel()
	states := []tenancy.SchemaState{{Schema: "public", Component: "shared", Version: 3, Latest: 3}}
	for i := range 5000 {
		s := tenancy.SchemaState{Schema: fmt.Sprintf("tenant_%04d", i), Component: "tenant", Version: 2, Latest: 2}
		switch {
		case i < 2:
			s.Version, s.LastError = 1, "ERROR: lock timeout\nwhile migrating"
		case i < 10:
			s.Version = 1
		}
		states = append(states, s)
	}
	st := summarize(states)

	var buf bytes.Buffer
	require.NoError(t, st.print(&buf, false))
	require.Equal(t, ""+
		"SCHEMA       SET     VERSION  LATEST  STATE    LAST ERROR\n"+
		"tenant_0000  tenant  1        2       failed   ERROR: lock timeout\\nwhile migrating\n"+
		"tenant_0001  tenant  1        2       failed   ERROR: lock timeout\\nwhile migrating\n"+
		"tenant_0002  tenant  1        2       pending\n"+
		"tenant_0003  tenant  1        2       pending\n"+
		"tenant_0004  tenant  1        2       pending\n"+
		"tenant_0005  tenant  1        2       pending\n"+
		"tenant_0006  tenant  1        2       pending\n"+
		"tenant_0007  tenant  1        2       pending\n"+
		"tenant_0008  tenant  1        2       pending\n"+
		"tenant_0009  tenant  1        2       pending\n"+
		"5000 tenant schemas: 4990 current, 10 pending (2 failed); shared 3/3\n", buf.String())
	require.True(t, st.pending())
	require.Len(t, st.listed(true), 5001)

	v := st.view(false)
	require.Len(t, v.Schemas, 10)
	require.Equal(t, 10, v.Summary.Pending)
	require.Equal(t, 2, v.Summary.Failed)
}

func TestStatusSummaryCurrent(t *testing.T) {
	t.Parallel()
	st := summarize([]tenancy.SchemaState{
		{Schema: "public", Component: "shared", Version: 1, Latest: 2},
		{Schema: "tenant_a", Component: "tenant", Version: 1, Latest: 1},
	})
	require.True(t, st.pending(), "shared migrations are pending")
	var buf bytes.Buffer
	require.NoError(t, st.print(&buf, false))
	require.Contains(t, buf.String(), "public  shared  1        2       pending")
	require.Contains(t, buf.String(), "1 tenant schema: 1 current, 0 pending (0 failed); shared 1/2\n")
}

func TestStatusJobQueuePending(t *testing.T) {
	t.Parallel()
	st := summarize([]tenancy.SchemaState{
		{Schema: "public", Component: "shared", Version: 2, Latest: 2},
		{Schema: "tenant_a", Component: "tenant", Version: 1, Latest: 1},
		{Schema: "public", Component: queueComponent, Version: 6, Latest: 8},
	})
	require.True(t, st.pending(), "River's migrations are pending")
	var buf bytes.Buffer
	require.NoError(t, st.print(&buf, false))
	require.Equal(t, ""+
		"SCHEMA  SET        VERSION  LATEST  STATE    LAST ERROR\n"+
		"public  job queue  6        8       pending\n"+
		"1 tenant schema: 1 current, 0 pending (0 failed); shared 2/2; job queue 6/8\n", buf.String())
	v := st.view(false)
	require.Equal(t, 6, v.Summary.QueueVersion)
	require.Equal(t, 8, v.Summary.QueueLatest)

	buf.Reset()
	printJobsDryRun(&buf, 6, 8)
	printJobsDryRun(&buf, 8, 8)
	require.Equal(t, "dry run: job queue: would apply River migrations 7 -> 8\n"+
		"dry run: job queue: at River version 8, nothing to apply\n", buf.String())
}

func TestPrintMigrateReport(t *testing.T) {
	t.Parallel()
	rep := &tenancy.MigrateReport{
		SharedFrom: latestShared(), SharedTo: latestShared(),
		Pending: make([]tenancy.SchemaState, 5),
		Applied: 2,
		Failed: []tenancy.SchemaError{
			{Schema: "tenant_b", Err: errors.New("tenant migration 0002_x: ERROR: boom")},
			{Schema: "tenant_a", Err: errors.New("lock schema: timeout")},
		},
	}
	var buf bytes.Buffer
	printMigrateReport(&buf, rep, tenancy.MigrateOptions{})
	require.Equal(t, ""+
		fmt.Sprintf("shared: at version %d, nothing to apply\n", latestShared())+
		"tenants: 2 applied, 2 failed, 1 pending\n"+
		"failed: tenant_a: lock schema: timeout\n"+
		"failed: tenant_b: tenant migration 0002_x: ERROR: boom\n", buf.String())

	buf.Reset()
	dry := &tenancy.MigrateReport{Pending: []tenancy.SchemaState{
		{Schema: "tenant_a", Version: 0, Latest: 1, LastError: "boom"},
	}}
	printMigrateReport(&buf, dry, tenancy.MigrateOptions{DryRun: true, Tenant: true})
	require.Equal(t, ""+
		"dry run: tenants: 1 schema would migrate\n"+
		"  tenant_a: 0 -> 1 (last attempt failed: boom)\n", buf.String())
}
