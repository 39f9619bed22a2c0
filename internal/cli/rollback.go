package cli

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
)

// RollbackOptions are the inputs of 'cfyauth rollback'.
type RollbackOptions struct {
	To   int
	List bool
	changeFlags
}

// historyOutput is the JSON document of 'cfyauth rollback --list'.
type historyOutput struct {
	Entries []modules.EntrySummary `json:"entries"`
}

func newRollbackCmd(app *App, runF func(*RollbackOptions) error) *cobra.Command {
	opts := &RollbackOptions{}
	cmd := &cobra.Command{
		Use:   "rollback [--to ID]",
		Short: "Restore the module set from before the last change",
		Long: `Restore the module set that was in place before the last change, or before
journal entry ID with --to: the receipts, and every file in the folder the
REST service loads, byte for byte with its owner and mode. Every version
ever installed or adopted is kept in the store, so any entry still in the
journal can be restored. 'cfyauth rollback --list' shows the journal.

A rollback is itself a journaled change, so a second rollback undoes the
first. Files placed by hand since that change are left alone; a file the
rollback would overwrite that was changed by hand is a conflict unless
--force is given.

rollback asks for confirmation on a terminal; --yes answers it, and without
a terminal --yes is required.

` + restartHelp + `

Exit status: 0 restored or nothing to change, 1 a file is in the way, the
journal is empty, not confirmed, or the REST service failed its health gate
or a login check after --restart, 2 unknown entry, usage error or no --yes
without a terminal, 3 lock held, permission denied or no service manager, 4
--dry-run found changes to make.`,
		Example: `  cfyauth rollback --list
  cfyauth rollback --yes --restart
  cfyauth rollback --yes
  cfyauth rollback --to 12 --dry-run`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			if runF != nil {
				return runF(opts)
			}
			if opts.List {
				if opts.Restart {
					return apperr.Usage("conflicting_flags", "--list only shows the journal, so --restart does not apply").
						WithHint("drop --restart, or drop --list to roll back and restart")
				}
				return runRollbackList(cmd, app)
			}
			to := modules.NewestEntry
			if cmd.Flags().Changed("to") {
				to = opts.To
			}
			run := &changeRun{cmd: cmd, app: app, flags: opts.changeFlags,
				op: func(tx *modules.Tx, co modules.ChangeOptions) (*modules.Change, error) {
					return tx.Rollback(to, co)
				},
				confirm: func(ch *modules.Change) string {
					return fmt.Sprintf("Restore the module set from before journal entry %d (%s)?", ch.RestoredFrom, strings.Join(changedNames(ch), ", "))
				},
			}
			return run.run()
		},
	}
	cmd.Flags().IntVar(&opts.To, "to", 0, "restore the module set from before this journal entry (default: the newest)")
	cmd.Flags().BoolVar(&opts.List, "list", false, "list the journal entries and change nothing")
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addForce(cmd, "overwrite files changed by hand")
	return cmd
}

func runRollbackList(cmd *cobra.Command, app *App) error {
	store, err := openStore(app)
	if err != nil {
		return err
	}
	var items []modules.EntrySummary
	err = store.View(cmd.Context(), func(tx *modules.Tx) error {
		for _, w := range tx.Warnings() {
			app.Warnf("%s", w)
		}
		var err error
		items, err = tx.History(0)
		return err
	})
	if err != nil {
		return err
	}

	if app.JSON() {
		if items == nil {
			items = []modules.EntrySummary{}
		}
		return app.WriteJSON(historyOutput{Entries: items})
	}
	if len(items) == 0 {
		app.Infof("the journal is empty: cfyauth has made no changes under %s", store.StateDir)
		return nil
	}

	table := newTable(app.IO.Out)
	table.Header("ID", "STARTED", "OP", "MODULES", "USER", "STATUS")
	for _, it := range items {
		status := it.Status
		if it.Recovered {
			status += " (completed by a later run)"
		}
		op := it.Op
		if it.RestoredFrom != 0 {
			op += " of " + strconv.Itoa(it.RestoredFrom)
		}
		row := []string{strconv.Itoa(it.ID), it.StartedAt.Local().Format(time.DateTime), op, strings.Join(it.Names, " "), it.User, status}
		if err := table.Append(row); err != nil {
			return fmt.Errorf("render table row: %w", err)
		}
	}
	if err := table.Render(); err != nil {
		return fmt.Errorf("render table: %w", err)
	}
	app.Infof("'%s' restores the module set from before entry ID", app.cfyauthCommand("rollback --to ID"))
	return nil
}
