package ccsarama

// ReferenceFloor is referenceFloor, for the tests of the cap.
var ReferenceFloor = referenceFloor

// SetMaxUnconfirmed sets maxUnconfirmed for a test, and restores it after.
func SetMaxUnconfirmed(t interface{ Cleanup(func()) }, n int) {
	old := maxUnconfirmed
	maxUnconfirmed = n
	t.Cleanup(func() { maxUnconfirmed = old })
}
