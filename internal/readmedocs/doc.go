// Package readmedocs holds tests that keep the README's reference tables in
// step with the code: every default the defaults table names is checked
// against the constant it documents.
package readmedocs
