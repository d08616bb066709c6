//go:build !unix

package filestash

import "os"

// openNoBlock: no such flags here; files are checked with Lstat first.
const openNoBlock = 0

// flock: without flock(2) the key lock holds within this process only.
func flock(*os.File) error { return nil }

func funlock(*os.File) error { return nil }
