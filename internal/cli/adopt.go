package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
)

// AdoptOptions are the inputs of 'cfyauth adopt'.
type AdoptOptions struct {
	Names []string
	All   bool
	changeFlags
}

func newAdoptCmd(app *App, runF func(*AdoptOptions) error) *cobra.Command {
	opts := &AdoptOptions{}
	cmd := &cobra.Command{
		Use:   "adopt NAME... | --all",
		Short: "Take module files placed by hand under management",
		Long: `Take files in the folder the REST service loads that cfyauth did not place
(unmanaged), or that were changed by hand since cfyauth placed them
(modified), under management as they are: each is validated first, its
bytes go into the store, it gets a receipt as an enabled module, and its
owner and mode are set to cfyuser and 0640. The content is not changed.

--all adopts every unmanaged and modified file. Adopting a module that is
already managed and unchanged changes nothing.

` + restartHelp + `

Exit status: 0 adopted or nothing to change, 1 validation failed, the file
cannot be managed, or the REST service failed its health gate or a login
check after --restart, 2 unknown module or usage error, 3 lock held,
permission denied or no service manager, 4 --dry-run found changes to make.`,
		Example: `  cfyauth adopt my_auth
  cfyauth adopt --all --restart
  cfyauth adopt --all --dry-run`,
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Names = args
			switch {
			case opts.All && len(args) > 0:
				return apperr.Usage("invalid_arguments", "pass module names or --all, not both").
					WithHint("run 'cfyauth adopt --all', or 'cfyauth adopt NAME...'")
			case !opts.All && len(args) == 0:
				return apperr.Usage("missing_argument", "adopt needs module names or --all").
					WithHint("run 'cfyauth list' to see unmanaged and modified modules")
			}
			if runF != nil {
				return runF(opts)
			}
			run := &changeRun{cmd: cmd, app: app, flags: opts.changeFlags,
				op: func(tx *modules.Tx, co modules.ChangeOptions) (*modules.Change, error) {
					return tx.Adopt(opts.Names, opts.All, co)
				}}
			return run.run()
		},
	}
	cmd.Flags().BoolVar(&opts.All, "all", false, "adopt every unmanaged and modified module file")
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addSkipValidation(cmd)
	return cmd
}
