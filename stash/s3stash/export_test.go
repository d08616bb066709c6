package s3stash

// OptionsFromURL exposes the URL mapping to the tests.
var OptionsFromURL = optionsFromURL
