package cli

import (
	"os"
	"strings"
	"time"

	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/manager"
	"github.com/cfyauth/cfyauth/internal/modules"
)

// SandboxInitOptions are the inputs of 'cfyauth sandbox init'.
type SandboxInitOptions struct {
	Dir     string
	Release string
	UID     int
	GID     int
}

func newSandboxCmd(app *App) *cobra.Command {
	cmd := &cobra.Command{
		Use:   "sandbox",
		Short: "Create manager file trees for trying cfyauth and for tests",
		Long: `Create an empty Cloudify Manager file tree to use with --root DIR: for
trying cfyauth without a manager, and for tests. 'cfyauth sandbox init DIR'
lays it out, of the release chosen with --release.`,
		Example: `  cfyauth sandbox init /tmp/mgr
  cfyauth sandbox init /tmp/mgr51 --release 5.1
  cfyauth --root /tmp/mgr install ./my_auth.py --enable`,
		Args: noArgs,
		RunE: func(cmd *cobra.Command, args []string) error {
			return cmd.Help()
		},
	}
	cmd.AddCommand(newSandboxInitCmd(app))
	return cmd
}

func newSandboxInitCmd(app *App) *cobra.Command {
	opts := &SandboxInitOptions{}
	cmd := &cobra.Command{
		Use:   "init DIR",
		Short: "Lay out an empty manager file tree in DIR",
		Long: `Lay out an empty Cloudify Manager file tree in DIR, to use with --root DIR.

The tree tells its release apart the way a real manager does: the Python
version of the virtualenv path (3.6 for 5.1 and 6.4, 3.11 for 7.0), the
supervisord files of 6.4 and 7.0, and a cfyuser account in its own
etc/passwd (by default with your own user and group IDs, so you can install
modules into it without root). It has no Python interpreter of its own, so
validate and test fall back to python3 from PATH there, with a warning.

DIR must be new or empty. Running init again on a sandbox of the same
release changes nothing.`,
		Example: `  cfyauth sandbox init /tmp/mgr
  cfyauth sandbox init /tmp/mgr51 --release 5.1
  cfyauth --root /tmp/mgr list`,
		Args: exactArgs(1, "the folder to create (DIR)"),
		RunE: func(cmd *cobra.Command, args []string) error {
			opts.Dir = args[0]
			res, err := manager.InitSandbox(opts.Dir, manager.SandboxOptions{
				Release: opts.Release, UID: opts.UID, GID: opts.GID, Now: time.Now(),
			})
			if err != nil {
				return err
			}
			if app.JSON() {
				return app.WriteJSON(res)
			}
			if res.Changed {
				app.Printf("created a sandbox manager (release %s) in %s\n", res.Release, res.Root)
			} else {
				app.Printf("%s is already a sandbox manager of release %s; nothing changed\n", res.Root, res.Release)
			}
			app.Infof("next: %s (example modules are in examples/authenticators of the cfyauth source)", modules.CommandLine(res.Root, "install MODULE.py --enable"))
			return nil
		},
	}
	cmd.Flags().StringVar(&opts.Release, "release", "7.0", "release to imitate: "+strings.Join(manager.SandboxReleases(), ", "))
	cmd.Flags().IntVar(&opts.UID, "cfyuser-uid", os.Getuid(), "user ID of cfyuser in the sandbox's etc/passwd")
	cmd.Flags().IntVar(&opts.GID, "cfyuser-gid", os.Getgid(), "group ID of cfyuser in the sandbox's etc/group")
	return cmd
}
