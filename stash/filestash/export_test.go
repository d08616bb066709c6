package filestash

// SetSyncHook makes s call f with every directory it fsyncs (relative,
// slash-separated; "." is the store's own).
func SetSyncHook(s *Store, f func(dir string)) { s.onSync = f }
