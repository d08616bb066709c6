// Package filestash is the stash backend over a local directory: the
// embedded default, for a single host, a shared volume, tests and demos.
//
// Its Scheme is "file". Open it by URL (the package registers its opener;
// package claimstash links it in), or call New:
//
//	eng, err := stash.New(stash.WithBackendURL(ctx, "file:///var/lib/claimstash"))
//
//	store, err := filestash.New("/var/lib/claimstash")
//	eng, err := stash.New(stash.WithBackend(store))
//
// # URL
//
// file:///absolute/dir (three slashes: no host; the path must be absolute).
// Query parameters, each true or false, map onto the options of New; any
// other parameter is refused:
//
//	create_dir  create the directory if missing (CreateDir); default false
//	nosync      skip fsync, for tests and scratch space only (NoSync); default false
//
// Addresses are file://namespace[/key=value...]/name.<digest>; they name a
// stash inside the configured directory, never a path of their own.
//
// # Layout
//
// Each stash is a directory holding two files:
//
//	<dir>/<namespace>/[<scope key>=<value>/...]<name>.<digest>/data        the stored (encoded) bytes
//	<dir>/<namespace>/[<scope key>=<value>/...]<name>.<digest>/attrs.json  driver.Attributes as JSON
//
// Entries whose names start with a dot belong to the driver: ".tmp-*" are
// writes in progress (or an attribute update in progress, inside a stash
// directory), ".del-*" deletes in progress. The address grammar forbids
// names, namespaces and scopes that start with a dot, so none of them can be
// addressed, and List skips them.
//
// # Atomicity and durability
//
// Put writes data and attrs.json into a fresh ".tmp-*" directory beside the
// stash's, fsyncs both files and that directory, renames it to the stash's
// name and fsyncs the parent (and the namespace and scope directories up
// to the store, the first time the Store writes into them: whoever created
// them, a concurrent Put or another process, may not have yet). The rename is the commit: a reader
// sees no stash or a complete one with its attributes, and a crash at any
// point leaves either nothing readable or the whole stash. A Put of an
// existing key returns driver.ErrExists without replacing anything, and
// Stat reports a stash only where Get would open one: a stash directory
// that lost its data or attributes file (a crash of a NoSync store, a hand
// that removed it) is not found by either, and a Put writes it afresh; one
// damaged otherwise (a data file of the wrong size, a file or a symbolic
// link in place of the directory) is driver.ErrIntegrity for Stat, Get
// and Put alike, never reported as stored. Concurrent Puts of one key, in one process or several, leave exactly one
// of them. A Put whose reader fails, whose context is cancelled, or whose
// payload is shorter or longer than announced removes its temporary
// directory and leaves nothing visible.
//
// UpdateAttributes (time-to-idle, expiry extension) writes a ".tmp-*" file
// inside the stash directory, fsyncs it and renames it over attrs.json. Delete
// renames the stash directory to ".del-*" (the commit) and then removes it.
// Get opens the data and the attributes through one handle on the stash
// directory, so it returns a consistent pair even while the stash is being
// deleted or re-created.
//
// Delete, UpdateAttributes, ModifyAttributes (driver.Modifier: the engine's
// expiry extensions and time-to-idle) and DeleteIf (driver.ConditionalDeleter:
// Sweep) hold a lock on the stash directory: a mutex within the process and
// flock(2) on the directory, which other processes sharing the store
// respect (on systems without flock, the mutex only). An update therefore
// never interleaves with another or with a delete, and one that finds the
// directory deleted while it waited is driver.ErrNotFound.
//
// # Safety
//
// The engine validates namespaces and keys; the driver checks them again
// (the same grammar, plus: no empty, hidden, "." or ".." segment, no
// separator, no NUL) and refuses anything else with an error matching
// driver.ErrInvalidAddress. All file access goes through an os.Root on the
// directory, so not even a symbolic link planted inside the store can lead
// outside it. Data and attribute files are checked with Lstat and opened
// non-blocking without following links: a FIFO, device, socket or link
// planted in their place is driver.ErrIntegrity at once (Sweep skips it),
// never a read that blocks. Files are created 0600 and directories 0700:
// stashes hold message bodies.
//
// # Errors
//
// A missing stash is driver.ErrNotFound; a Put over an existing one
// driver.ErrExists (which the engine treats as success); a namespace or key
// outside the grammar, or a path that would leave the store,
// driver.ErrInvalidAddress; a data file whose length differs from its
// attributes, or unreadable attributes, driver.ErrIntegrity. Other file
// system failures are returned wrapped, with a "filestash:" prefix.
//
// # Limits
//
// One directory per stash, two files in it: expect two inodes per stash and
// file system limits on entries per directory (use scopes to spread a large
// store). A crash during a Put leaves a ".tmp-*" directory behind (hidden,
// never read); List, and so the engine's Sweep, removes those untouched for
// StaleAfter (a day), and the leftovers of interrupted deletes at once.
// Namespace and scope directories are not removed when they empty. Sweep
// (the engine's, through List) deletes expired stashes.
package filestash
