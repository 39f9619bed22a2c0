package cli

import (
	"errors"
	"path/filepath"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
	"github.com/cfyauth/cfyauth/internal/modules"
)

// InstallOptions are the inputs of 'cfyauth install'.
type InstallOptions struct {
	Source       string
	Name         string
	SHA256       string
	Enable       bool
	SourceCACert string
	Timeout      time.Duration
	changeFlags
}

func newInstallCmd(app *App, runF func(*InstallOptions) error) *cobra.Command {
	opts := &InstallOptions{}
	cmd := &cobra.Command{
		Use:   "install SOURCE",
		Short: "Add an authenticator module to the store, and optionally enable it",
		Long: `Add an authenticator module to cfyauth's store with a receipt. SOURCE is a .py
file, '-' for stdin (then --name is required), or an https:// URL (then
--sha256 is required; http:// is rejected).

The module is validated with the manager's Python first, and a failing
module is rejected. The bytes are kept in the store under their sha256, so
'cfyauth rollback' can always bring a version back. Without --enable the
module stays out of the folder the REST service loads; with it, the module
is written there atomically, owned by cfyuser with mode 0640.

Installing bytes that are already installed changes nothing. A file of the
same name that cfyauth did not place, or that differs from its receipt, is
never overwritten unless --force is given ('cfyauth adopt' keeps it).

` + restartHelp + `

Exit status: 0 installed or nothing to change, 1 validation failed, the
sha256 does not match, a file is in the way, or the REST service failed its
health gate or a login check after --restart, 2 usage error, 3 lock held,
permission denied, no manager layout or no service manager, 4 --dry-run
found changes to make.`,
		Example: `  cfyauth install ./my_auth.py --enable
  cfyauth install ./my_auth.py --enable --restart --verify-login alice --password-file alice.pw
  cfyauth install https://files.example.org/my_auth.py --sha256 9f86d08…
  cat my_auth.py | cfyauth install - --name my_auth
  cfyauth install ./my_auth.py --dry-run -o json`,
		Args: exactArgs(1, "one SOURCE: a .py file, '-' or an https:// URL"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Source = args[0]
			if runF != nil {
				return runF(opts)
			}
			return runInstall(cmd, app, opts)
		},
	}
	f := cmd.Flags()
	f.StringVar(&opts.Name, "name", "", "module name (default: the file name without .py; required with '-')")
	f.StringVar(&opts.SHA256, "sha256", "", "expected sha256 of the module's bytes; required for URLs")
	f.BoolVar(&opts.Enable, "enable", false, "also put the module into the folder the REST service loads")
	f.StringVar(&opts.SourceCACert, "source-ca-cert", "", "PEM file of CAs to trust for an https:// SOURCE (default: the system's)")
	f.DurationVar(&opts.Timeout, "timeout", 60*time.Second, "how long downloading an https:// SOURCE may take")
	opts.addDryRun(cmd)
	opts.addRestartFlags(cmd)
	opts.addForce(cmd, "replace a file of the same name that cfyauth did not place or that was changed by hand")
	opts.addSkipValidation(cmd)
	return cmd
}

func runInstall(cmd *cobra.Command, app *App, opts *InstallOptions) error {
	var want string
	if opts.SHA256 != "" {
		var err error
		if want, err = modules.NormalizeSHA256(opts.SHA256); err != nil {
			return err
		}
	}
	isURL := modules.IsURL(opts.Source)
	switch {
	case isURL:
		if _, err := modules.CheckURL(opts.Source); err != nil {
			return err
		}
		if want == "" {
			return apperr.Usage("missing_flag", "installing from a URL needs --sha256 to pin the expected bytes").
				WithHint("run: %s", app.cfyauthCommand("install %s --sha256 <sha256 of the file>", modules.ShellQuote(opts.Source)))
		}
	case opts.Source == "-" && opts.Name == "":
		return apperr.Usage("missing_flag", "reading a module from stdin needs --name").
			WithHint("run: %s < my_auth.py", app.cfyauthCommand("install - --name my_auth"))
	case opts.Source == "-" && opts.PasswordStdin:
		return apperr.Usage("conflicting_flags", "stdin cannot hold both the module ('-') and the --verify-login password (--password-stdin)").
			WithHint("pass the password with --password-file FILE or CFYAUTH_PASSWORD")
	}

	var src modules.Source
	var err error
	switch {
	case isURL:
		src, err = modules.FetchSource(cmd.Context(), opts.Source, modules.FetchOptions{
			Name: opts.Name, SHA256: want, CACertFile: opts.SourceCACert, Timeout: opts.Timeout,
		})
	case opts.Source == "-":
		src, err = modules.ReadSourceStream("stdin", opts.Name, app.IO.In)
	default:
		src, err = modules.ReadSourceFile(opts.Source)
	}
	if err != nil {
		return sourceError(err)
	}
	if !isURL && opts.Source != "-" {
		// The receipt records the file, so it must name it from anywhere.
		if abs, err := filepath.Abs(opts.Source); err == nil {
			src.Origin = abs
		}
	}
	if opts.Name != "" {
		src.Name = opts.Name
	}
	if want != "" && src.SHA256 != want {
		return modules.ChecksumError(src.Origin, want, src.SHA256)
	}

	run := &changeRun{cmd: cmd, app: app, flags: opts.changeFlags,
		op: func(tx *modules.Tx, co modules.ChangeOptions) (*modules.Change, error) {
			return tx.Install(src, modules.InstallOptions{ChangeOptions: co, Enable: opts.Enable})
		},
		next: func(ch *modules.Change) []string {
			if opts.Enable || len(ch.Modules) == 0 || ch.Modules[0].State != modules.StateDisabled {
				return nil
			}
			return []string{app.cfyauthCommand("enable %s", src.Name)}
		},
	}
	return run.run()
}

// sourceError turns a module source that cannot be read or used into an
// error of KindFailed, as validate reports it, with the reader's hint.
func sourceError(err error) error {
	var se *modules.SourceError
	if errors.As(err, &se) {
		e := apperr.Failed("invalid_source", "%s", se.Error())
		if se.Hint != "" {
			e.WithHint("%s", se.Hint)
		}
		return e
	}
	return err
}
