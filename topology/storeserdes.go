package topology

import (
	"encoding/json"
	"fmt"
	"reflect"
	"strconv"

	"github.com/sluicehq/sluice/serde"
)

// StoreSerdes are the serdes of a store's keys and values, for reading the
// store from outside its tasks: the runtime's interactive queries (typed
// views in Go, JSON over HTTP). The DSL sets them on the stores of its
// aggregations and tables (StoreSpec.Serdes); a store without them is
// still queryable from Go with serdes given by the caller.
//
// Stores keep bytes; a typed view asserts that its type parameters are
// those of the serdes (KeySerde, ValueSerde), as Kafka Streams' store()
// hands out a store typed by its serdes.
type StoreSerdes interface {
	// KeySerde is the serde.Serde[K] of the keys, ValueSerde the
	// serde.Serde[V] of the values (without a timestamped store's
	// timestamp).
	KeySerde() any
	ValueSerde() any
	// KeyFormat names how a key is written in a URL path: "string",
	// "int32", "int64", "float64", "bytes" (base64), or "json" (JSON text
	// of the key type).
	KeyFormat() string
	// ParseKey encodes the key written as text in KeyFormat.
	ParseKey(text string) ([]byte, error)
	// KeyJSON and ValueJSON decode an encoded key or value into a value
	// that encoding/json marshals.
	KeyJSON(b []byte) (any, error)
	ValueJSON(b []byte) (any, error)
}

// NewStoreSerdes returns the StoreSerdes of a store of K keys and V values.
func NewStoreSerdes[K, V any](keys serde.Serde[K], values serde.Serde[V]) StoreSerdes {
	if keys == nil || values == nil {
		return nil
	}
	return storeSerdes[K, V]{keys: keys, values: values}
}

type storeSerdes[K, V any] struct {
	keys   serde.Serde[K]
	values serde.Serde[V]
}

func (s storeSerdes[K, V]) KeySerde() any   { return s.keys }
func (s storeSerdes[K, V]) ValueSerde() any { return s.values }

func (s storeSerdes[K, V]) KeyFormat() string {
	var k K
	switch any(k).(type) {
	case string:
		return "string"
	case int32:
		return "int32"
	case int64:
		return "int64"
	case float64:
		return "float64"
	case []byte:
		return "bytes"
	}
	if t := reflect.TypeFor[K](); t.Kind() == reflect.String {
		return "string"
	}
	return "json"
}

func (s storeSerdes[K, V]) ParseKey(text string) ([]byte, error) {
	var k K
	var err error
	switch p := any(&k).(type) {
	case *string:
		*p = text
	case *int32:
		var n int64
		n, err = strconv.ParseInt(text, 10, 32)
		*p = int32(n)
	case *int64:
		*p, err = strconv.ParseInt(text, 10, 64)
	case *float64:
		*p, err = strconv.ParseFloat(text, 64)
	case *[]byte:
		err = json.Unmarshal(strconv.AppendQuote(nil, text), p) // base64, as JSON writes []byte
	default:
		if reflect.TypeFor[K]().Kind() == reflect.String {
			reflect.ValueOf(&k).Elem().SetString(text)
		} else {
			err = json.Unmarshal([]byte(text), &k)
		}
	}
	if err != nil {
		return nil, fmt.Errorf("key %q is not a %s key: %w", text, s.KeyFormat(), err)
	}
	return s.keys.Encode(nil, k)
}

func (s storeSerdes[K, V]) KeyJSON(b []byte) (any, error) { return s.keys.Decode(b) }

func (s storeSerdes[K, V]) ValueJSON(b []byte) (any, error) { return s.values.Decode(b) }
