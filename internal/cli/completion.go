package cli

import (
	"github.com/spf13/cobra"

	"github.com/cfyauth/cfyauth/internal/apperr"
)

func newCompletionCmd(app *App) *cobra.Command {
	return &cobra.Command{
		Use:   "completion bash|zsh|fish",
		Short: "Print a shell completion script",
		Long: `Print a completion script for bash, zsh or fish to stdout.

Load it in the current shell, or save it where your shell reads completions.`,
		Example: `  source <(cfyauth completion bash)
  cfyauth completion zsh > "${fpath[1]}/_cfyauth"
  cfyauth completion fish > ~/.config/fish/completions/cfyauth.fish`,
		ValidArgs: []string{"bash", "zsh", "fish"},
		Args:      exactArgs(1, "a shell name: bash, zsh or fish"),
		RunE: func(cmd *cobra.Command, args []string) error {
			root := cmd.Root()
			out := app.IO.Out
			switch args[0] {
			case "bash":
				return root.GenBashCompletionV2(out, true)
			case "zsh":
				return root.GenZshCompletion(out)
			case "fish":
				return root.GenFishCompletion(out, true)
			}
			return apperr.Usage("invalid_shell", "unsupported shell %q", args[0]).
				WithHint("use one of: bash, zsh, fish")
		},
	}
}
