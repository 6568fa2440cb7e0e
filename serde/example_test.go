package serde_test

import (
	"errors"
	"fmt"

	"github.com/sluicehq/sluice/serde"
)

func ExampleInt64() {
	b, _ := serde.Int64.Encode(nil, 1)
	fmt.Printf("% x\n", b)

	v, _ := serde.Int64.Decode(b)
	fmt.Println(v)
	// Output:
	// 00 00 00 00 00 00 00 01
	// 1
}

func ExampleFloat64() {
	b, _ := serde.Float64.Encode(nil, 1.0)
	fmt.Printf("% x\n", b)
	// Output:
	// 3f f0 00 00 00 00 00 00
}

func ExampleString() {
	// Encode appends, so one buffer serves many records.
	var buf []byte
	for _, s := range []string{"ab", "ç"} {
		buf, _ = serde.String.Encode(buf[:0], s)
		fmt.Printf("% x\n", buf)
	}
	// Output:
	// 61 62
	// c3 a7
}

func ExampleJSON() {
	type Event struct {
		User  string `json:"user"`
		Count int    `json:"count"`
	}
	events := serde.JSON[Event]()

	b, _ := events.Encode(nil, Event{User: "ada", Count: 3})
	fmt.Println(string(b))

	e, _ := events.Decode([]byte(`{"user":"bob","count":7}`))
	fmt.Printf("%+v\n", e)

	// A null (nil) value decodes to the zero Event.
	e, _ = events.Decode(nil)
	fmt.Printf("%+v\n", e)
	// Output:
	// {"user":"ada","count":3}
	// {User:bob Count:7}
	// {User: Count:0}
}

func ExampleDecodeError() {
	_, err := serde.Int64.Decode([]byte{1, 2, 3})
	fmt.Println(err)

	var de *serde.DecodeError
	if errors.As(err, &de) {
		fmt.Println(de.Serde, de.Len)
	}
	// Output:
	// sluice: serde int64: cannot decode 3 bytes: want 8
	// int64 3
}

func ExampleFunc() {
	// A bool as one byte, 0 or 1.
	boolean := serde.Func(
		func(dst []byte, v bool) ([]byte, error) {
			if v {
				return append(dst, 1), nil
			}
			return append(dst, 0), nil
		},
		func(b []byte) (bool, error) {
			if len(b) != 1 || b[0] > 1 {
				return false, &serde.DecodeError{Serde: "bool", Len: len(b), Err: errors.New("want 0 or 1")}
			}
			return b[0] == 1, nil
		},
	)
	b, _ := boolean.Encode(nil, true)
	fmt.Println(b)
	_, err := boolean.Decode([]byte{7})
	fmt.Println(err)
	// Output:
	// [1]
	// sluice: serde bool: cannot decode 1 byte: want 0 or 1
}
