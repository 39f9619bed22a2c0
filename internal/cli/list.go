package cli

import (
	"fmt"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/modules"
)

// listOutput is the JSON document of 'cfyauth list'.
type listOutput struct {
	modules.ListResult
	Warnings []string `json:"warnings,omitempty"`
}

func newListCmd(app *App, runF func() error) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "list",
		Short: "List every authenticator module and its state",
		Long: `List every authenticator module: those cfyauth manages, files placed in the
loaded folder by hand, and the premium package's built-in LDAP and OKTA
modules. For each: name, state, kind, sha256, validity and whether a
restart is pending.

States: enabled (in the loaded folder as installed), disabled (kept in the
store only), unmanaged (placed by hand), modified (differs from its
receipt), missing (enabled but its file is gone), built-in (the premium
package's own, never changed). Validity is the cached result of the last
validation of those bytes; list never starts Python. Restart pending
compares the files' change times with the last restart cfyauth recorded,
and says unknown when there is none; 'cfyauth status' asks the service
manager instead. A pending restart is also named on stderr; an unknown one
only with -v.

Exit status: 0 listed, 2 usage error, 3 lock held, permission denied or no
manager layout.`,
		Example: `  cfyauth list
  cfyauth list -o json`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF()
			}
			return runList(cmd, app)
		},
	}
	return cmd
}

func runList(cmd *cobra.Command, app *App) error {
	store, err := openStore(app)
	if err != nil {
		return err
	}
	var res modules.ListResult
	var warnings []string
	err = store.View(cmd.Context(), func(tx *modules.Tx) error {
		warnings = tx.Warnings()
		res = tx.List()
		return nil
	})
	for _, w := range warnings {
		app.Warnf("%s", w)
	}
	if err != nil {
		return err
	}

	if app.JSON() {
		if res.Modules == nil {
			res.Modules = []modules.ModuleStatus{}
		}
		return app.WriteJSON(listOutput{ListResult: res, Warnings: warnings})
	}
	return renderList(app, res)
}

// renderList prints the modules as a table, then the notes of modules that
// need attention and the restart-pending verdict.
func renderList(app *App, res modules.ListResult) error {
	table := newTable(app.IO.Out)
	table.Header("NAME", "STATE", "KIND", "SHA256", "VALID", "RESTART")
	for _, m := range res.Modules {
		state := string(m.State)
		if m.Active != nil {
			state += map[bool]string{true: " (active)", false: " (inactive)"}[*m.Active]
		}
		row := []string{m.Name, state, m.Kind, shortHash(m.SHA256), dash(m.Validity), dash(m.RestartPending)}
		if err := table.Append(row); err != nil {
			return fmt.Errorf("render table row: %w", err)
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}

	for _, m := range res.Modules {
		if m.Note != "" && (m.State != modules.StateBuiltin || app.Global.Verbose > 0) {
			app.Printf("%s: %s\n", m.Name, m.Note)
		}
	}
	switch {
	case res.RestartPending == modules.PendingYes:
		app.Infof("restart pending: modules changed since the last restart; run '%s'", app.cfyauthCommand("restart"))
	case res.RestartPending == modules.PendingUnknown && app.Global.Verbose > 0:
		app.Infof("restart pending: unknown, because cfyauth has recorded no restart; '%s' asks the service manager", app.cfyauthCommand("status"))
	}
	return nil
}

func dash(s string) string {
	if s == "" {
		return "-"
	}
	return s
}
