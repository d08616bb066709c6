// Command claimstash inspects and manages stashes by hand.
package main

import (
	"fmt"
	"os"
)

func main() {
	fmt.Fprintln(os.Stderr, "claimstash: not yet implemented")
	os.Exit(2)
}
