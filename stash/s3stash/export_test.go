package s3stash

import "github.com/aws/aws-sdk-go-v2/service/s3"

// OptionsFromURL exposes the URL mapping to the tests.
var OptionsFromURL = optionsFromURL

// Config is the settings the options make, for the tests.
type Config = settings

// NewConfig is New with the settings given directly, for the tests.
func NewConfig(client *s3.Client, c Config) (*Store, error) { return newStore(client, c) }

// NewHTTPClient exposes the HTTP client Open builds to the tests.
var NewHTTPClient = newHTTPClient

// SetRangeHook makes s call f before each ranged GET after the first of a
// read, with the range's offset.
func SetRangeHook(s *Store, f func(off int64)) { s.rangeHook = f }
