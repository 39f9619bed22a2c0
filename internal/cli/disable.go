package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/modules"
)

// DisableOptions are the inputs of 'cfyauth disable'.
type DisableOptions struct {
	Names []string
	changeFlags
}

func newDisableCmd(app *App, runF func(*DisableOptions) error) *cobra.Command {
	opts := &DisableOptions{}
	var seam func() error
	if runF != nil {
		seam = func() error { return runF(opts) }
	}
	cmd := &cobra.Command{
		Use:   "disable NAME...",
		Short: "Take modules out of the folder the REST service loads",
		Long: `Take managed modules out of the folder the REST service loads, and delete
their compiled files in __pycache__. The modules stay installed in the
store, so 'cfyauth enable' puts them back.

Disabling a disabled module changes nothing. A file that was changed by
hand is not deleted unless --force is given.

` + restartHelp + `

Exit status: 0 disabled or nothing to change, 1 a file is in the way, or
the REST service failed its health gate or a login check after --restart, 2
unknown module or usage error, 3 lock held, permission denied or no service
manager, 4 --dry-run found changes to make.`,
		Example: `  cfyauth disable my_auth
  cfyauth disable my_auth --restart
  cfyauth disable my_auth --dry-run`,
		Args:              minArgs(1, "at least one module NAME"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesEnabled, manyNames, noFiles),
		RunE:              namesChangeRunE(app, &opts.Names, &opts.changeFlags, seam, (*modules.Tx).Disable, nil),
	}
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addForce(cmd, "delete a file that was changed by hand")
	return cmd
}
