package ccsarama

// ReferenceFloor is referenceFloor, for the tests of the cap.
var ReferenceFloor = referenceFloor
