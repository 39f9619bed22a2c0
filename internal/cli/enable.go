package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/modules"
)

// EnableOptions are the inputs of 'cfyauth enable'.
type EnableOptions struct {
	Names []string
	changeFlags
}

func newEnableCmd(app *App, runF func(*EnableOptions) error) *cobra.Command {
	opts := &EnableOptions{}
	var seam func() error
	if runF != nil {
		seam = func() error { return runF(opts) }
	}
	cmd := &cobra.Command{
		Use:   "enable NAME...",
		Short: "Put installed modules into the folder the REST service loads",
		Long: `Put installed modules into the folder the REST service loads
(<root>/opt/manager/resources/authenticators), each validated first with the
manager's Python (a cached result for the same bytes and interpreter is
reused). Files are written atomically, owned by cfyuser with mode 0640.

All names are checked before anything changes; one journal entry records
the change. Enabling an enabled module changes nothing. A file that was
changed by hand is not overwritten unless --force is given.

` + restartHelp + `

Exit status: 0 enabled or nothing to change, 1 validation failed, a file is
in the way, or the REST service failed its health gate or a login check
after --restart, 2 unknown module or usage error, 3 lock held, permission
denied or no service manager, 4 --dry-run found changes to make.`,
		Example: `  cfyauth enable my_auth
  cfyauth enable my_auth --restart --verify-admin --admin-password-file /root/admin.pw
  cfyauth enable my_auth header_auth -o json`,
		Args:              minArgs(1, "at least one module NAME"),
		ValidArgsFunction: completeModuleNames(app, moduleNamesDisabled, manyNames, noFiles),
		RunE:              namesChangeRunE(app, &opts.Names, &opts.changeFlags, seam, (*modules.Tx).Enable, nil),
	}
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addForce(cmd, "overwrite a file that was changed by hand with the installed version")
	opts.addSkipValidation(cmd)
	return cmd
}
