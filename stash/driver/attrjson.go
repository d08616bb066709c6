package driver

import (
	"encoding/json"
	"errors"
	"fmt"
	"reflect"
	"time"
)

// DecodeAttributes decodes attributes stored as JSON, in the form
// encoding/json gives Attributes. For bytes that are no such value, its
// error says what is wrong in JSON's terms, by the stored field names,
// naming no Go type (json.Unmarshal's own errors name them: "Go struct
// field Attributes.size of type int64"). A driver wraps it with
// ErrIntegrity: stored attributes that do not decode are damaged.
func DecodeAttributes(data []byte) (*Attributes, error) {
	var a Attributes
	err := json.Unmarshal(data, &a)
	if err == nil {
		return &a, nil
	}
	return nil, jsonProblem(err)
}

func jsonProblem(err error) error {
	var te *json.UnmarshalTypeError
	var se *json.SyntaxError
	var pe *time.ParseError
	switch {
	case errors.As(err, &te) && te.Field != "":
		return fmt.Errorf("field %q holds a JSON %s, want %s", te.Field, te.Value, jsonKind(te.Type))
	case errors.As(err, &te):
		return fmt.Errorf("a JSON %s, want an object", te.Value)
	case errors.As(err, &se):
		return fmt.Errorf("not JSON: %v (at byte %d)", se, se.Offset)
	case errors.As(err, &pe):
		return fmt.Errorf("a time %q that is not RFC 3339", pe.Value)
	}
	return errors.New("not the JSON of stash attributes")
}

// jsonKind names what a JSON value for t must be.
func jsonKind(t reflect.Type) string {
	if t == nil {
		return "another type"
	}
	switch t.Kind() {
	case reflect.Int, reflect.Int8, reflect.Int16, reflect.Int32, reflect.Int64,
		reflect.Uint, reflect.Uint8, reflect.Uint16, reflect.Uint32, reflect.Uint64:
		return "an integer in range"
	case reflect.Float32, reflect.Float64:
		return "a number"
	case reflect.String:
		return "a string"
	case reflect.Bool:
		return "true or false"
	case reflect.Map, reflect.Struct:
		return "an object"
	case reflect.Slice, reflect.Array:
		return "an array"
	}
	return "another type"
}
