package cli

import (
	"errors"
	"fmt"
	"io"
	"strconv"

	"github.com/spf13/cobra"

	"github.com/xatlabs/xat/tenancy"
)

func (a *app) migrateStatusCommand() *cobra.Command {
	var check, asJSON, all bool
	cmd := &cobra.Command{
		Use:   "status",
		Short: "Show the migration state of every schema",
		Long: `Show the migration state of public (the shared set and the job queue's
tables, whose version River keeps) and of the tenant schemas: version,
latest version, and the error of a failed last attempt. Only schemas with
something pending are listed unless --all is given; a summary line ends the
output either way. With --check the command exits 1 when anything is
pending, for deploy scripts.`,
		Args: args(),
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			t, err := a.target(ctx)
			if err != nil {
				return err
			}
			defer t.close()
			db, err := a.connect(ctx, t, openOpts{})
			if err != nil {
				return err
			}
			defer db.Close()

			states, err := db.Status(ctx)
			if err != nil {
				return err
			}
			queue := tenancy.SchemaState{Schema: "public", Component: queueComponent}
			if queue.Version, queue.Latest, err = jobQueueVersion(ctx, t.adminURL); err != nil {
				return err
			}
			st := summarize(append(states, queue))
			if asJSON {
				err = writeJSON(cmd.OutOrStdout(), st.view(all))
			} else {
				err = st.print(cmd.OutOrStdout(), all)
			}
			if err != nil {
				return err
			}
			if check && st.pending() {
				return &exitError{code: exitFailure, err: errors.New("migrations are pending; run xat migrate")}
			}
			return nil
		},
	}
	f := cmd.Flags()
	f.BoolVar(&check, "check", false, "exit 1 when any migration is pending")
	f.BoolVar(&asJSON, "json", false, "print JSON")
	f.BoolVar(&all, "all", false, "list every schema, not only those with something pending")
	return cmd
}

// queueComponent names the job queue's tables (River's, in public) in
// migration status; River keeps their version.
const queueComponent = "job queue"

// migrationStatus is the fleet's migration state, counted.
type migrationStatus struct {
	shared  tenancy.SchemaState
	queue   *tenancy.SchemaState // nil when not read
	tenants []tenancy.SchemaState

	current, pendingCount, failed int
}

func summarize(states []tenancy.SchemaState) *migrationStatus {
	st := &migrationStatus{}
	for _, s := range states {
		switch s.Component {
		case "shared":
			st.shared = s
			continue
		case queueComponent:
			st.queue = &s
			continue
		}
		st.tenants = append(st.tenants, s)
		switch {
		case s.LastError != "":
			st.pendingCount++
			st.failed++
		case s.Pending():
			st.pendingCount++
		default:
			st.current++
		}
	}
	return st
}

func (st *migrationStatus) pending() bool {
	return st.pendingCount > 0 || st.shared.Pending() || st.queue != nil && st.queue.Pending()
}

// listed returns the schemas to show: all of them, or those pending.
func (st *migrationStatus) listed(all bool) []tenancy.SchemaState {
	var out []tenancy.SchemaState
	if all || st.shared.Pending() {
		out = append(out, st.shared)
	}
	if st.queue != nil && (all || st.queue.Pending()) {
		out = append(out, *st.queue)
	}
	for _, s := range st.tenants {
		if all || s.Pending() {
			out = append(out, s)
		}
	}
	return out
}

func (st *migrationStatus) summary() string {
	s := fmt.Sprintf("%s: %d current, %d pending (%d failed); shared %d/%d",
		plural(len(st.tenants), "tenant schema"), st.current, st.pendingCount, st.failed,
		st.shared.Version, st.shared.Latest)
	if st.queue != nil {
		s += fmt.Sprintf("; job queue %d/%d", st.queue.Version, st.queue.Latest)
	}
	return s
}

func (st *migrationStatus) print(w io.Writer, all bool) error {
	listed := st.listed(all)
	if len(listed) > 0 {
		rows := make([][]string, len(listed))
		for i, s := range listed {
			rows[i] = []string{
				s.Schema, s.Component, strconv.Itoa(s.Version), strconv.Itoa(s.Latest),
				state(s), cell(s.LastError),
			}
		}
		if err := table(w, []string{"SCHEMA", "SET", "VERSION", "LATEST", "STATE", "LAST ERROR"}, rows); err != nil {
			return err
		}
	}
	_, err := fmt.Fprintln(w, st.summary())
	return err
}

func state(s tenancy.SchemaState) string {
	switch {
	case s.LastError != "":
		return "failed"
	case s.Pending():
		return "pending"
	}
	return "current"
}

// statusView is the JSON form of migration status.
type statusView struct {
	Schemas []tenancy.SchemaState `json:"schemas"`
	Summary struct {
		Tenants       int `json:"tenants"`
		Current       int `json:"current"`
		Pending       int `json:"pending"`
		Failed        int `json:"failed"`
		SharedVersion int `json:"shared_version"`
		SharedLatest  int `json:"shared_latest"`
		QueueVersion  int `json:"job_queue_version,omitempty"`
		QueueLatest   int `json:"job_queue_latest,omitempty"`
	} `json:"summary"`
}

func (st *migrationStatus) view(all bool) statusView {
	v := statusView{Schemas: st.listed(all)}
	if v.Schemas == nil {
		v.Schemas = []tenancy.SchemaState{}
	}
	v.Summary.Tenants = len(st.tenants)
	v.Summary.Current = st.current
	v.Summary.Pending = st.pendingCount
	v.Summary.Failed = st.failed
	v.Summary.SharedVersion = st.shared.Version
	v.Summary.SharedLatest = st.shared.Latest
	if st.queue != nil {
		v.Summary.QueueVersion, v.Summary.QueueLatest = st.queue.Version, st.queue.Latest
	}
	return v
}
