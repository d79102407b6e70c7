package tokens_test

import (
	"fmt"

	"github.com/tokenwise/tokenwise/middleware"
	"github.com/tokenwise/tokenwise/tokens"
)

func ExampleEstimator_Request() {
	e := tokens.New()
	req := &middleware.Request{Messages: []middleware.Message{
		{Role: middleware.RoleSystem, Content: "You are a bot."},
		{Role: middleware.RoleUser, Content: "Check the disk."},
	}}
	fmt.Println(e.Encoding("gpt-4o-mini"), e.Request("gpt-4o-mini", req))
	fmt.Println(e.Encoding("gpt-4"), e.Request("gpt-4", req))
	fmt.Printf("%q %d\n", e.Encoding("claude-sonnet-4"), e.Request("claude-sonnet-4", req))
	// Output:
	// o200k_base 20
	// cl100k_base 20
	// "" 33
}
