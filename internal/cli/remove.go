package cli

import (
	"fmt"
	"strings"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/modules"
)

// RemoveOptions are the inputs of 'cfyauth remove'.
type RemoveOptions struct {
	Names []string
	changeFlags
}

func newRemoveCmd(app *App, runF func(*RemoveOptions) error) *cobra.Command {
	opts := &RemoveOptions{}
	var seam func() error
	if runF != nil {
		seam = func() error { return runF(opts) }
	}
	cmd := &cobra.Command{
		Use:   "remove NAME...",
		Short: "Uninstall modules; the store keeps their bytes for rollback",
		Long: `Uninstall managed modules: take them out of the folder the REST service
loads (disabling them first when enabled) and drop their receipts. The
stored bytes stay in the store, so 'cfyauth rollback' brings them back.

remove asks for confirmation on a terminal; --yes answers it, and without a
terminal --yes is required. A file that cfyauth did not place is never
deleted; adopt it first. A file changed by hand is not deleted unless
--force is given.

` + restartHelp + `

Exit status: 0 removed, 1 a file is in the way, not confirmed, or the REST
service failed its health gate or a login check after --restart, 2 unknown
module, usage error or no --yes without a terminal, 3 lock held, permission
denied or no service manager, 4 --dry-run found changes to make.`,
		Example: `  cfyauth remove my_auth
  cfyauth remove my_auth --yes --restart
  cfyauth remove my_auth old_auth --yes -o json`,
		Args:              minArgs(1, "at least one module NAME"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesManaged, manyNames, noFiles),
		RunE: namesChangeRunE(app, &opts.Names, &opts.changeFlags, seam, (*modules.Tx).Remove, func(ch *modules.Change) string {
			return fmt.Sprintf("Remove %s?", strings.Join(changedNames(ch), ", "))
		}),
	}
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addForce(cmd, "delete a file that was changed by hand")
	return cmd
}
