// Command cfyauth manages the external-authentication modules of a Cloudify
// Manager. All behaviour lives in internal/cli.
package main

import (
	"os"

	"github.com/cfyauth/cfyauth/internal/cli"
)

func main() {
	os.Exit(cli.Main())
}
