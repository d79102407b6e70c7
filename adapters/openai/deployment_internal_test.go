package openai

import (
	"net/url"
	"testing"
)

// TestDeploymentURL: an Azure URL's deployment follows a call moved to
// another model when it is named as its model (or as go-openai names it);
// another name is an error; a URL without a deployment is left alone.
func TestDeploymentURL(t *testing.T) {
	for _, tc := range []struct {
		url, from, to, want string
		fails               bool
	}{
		{url: "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions?api-version=2024-10-21", from: "gpt-4o", to: "gpt-4o-mini",
			want: "https://r.openai.azure.com/openai/deployments/gpt-4o-mini/chat/completions?api-version=2024-10-21"},
		{url: "https://r.openai.azure.com/openai/deployments/gpt-35-turbo/chat/completions", from: "gpt-3.5-turbo", to: "gpt-3.5-turbo-16k",
			want: "https://r.openai.azure.com/openai/deployments/gpt-35-turbo-16k/chat/completions"},
		{url: "https://r.openai.azure.com/openai/deployments/ftgpt-4o-mini2024/chat/completions", from: "ft:gpt-4o-mini:2024", to: "gpt-4o",
			want: "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions"},
		{url: "https://r.openai.azure.com/openai/deployments/prod/chat/completions", from: "gpt-4o", to: "gpt-4o-mini", fails: true},
		{url: "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions", from: "gpt-4o", to: "org/model", fails: true},
		{url: "https://r.openai.azure.com/openai/deployments/gpt-4o/chat/completions", from: "", to: "gpt-4o", fails: true},
		{url: "https://api.openai.com/v1/chat/completions", from: "gpt-4o", to: "gpt-4o-mini"},
	} {
		u, _ := url.Parse(tc.url)
		got, err := deploymentURL(u, tc.from, tc.to)
		switch {
		case tc.fails:
			if err == nil {
				t.Errorf("%s from %s to %s: %v, want an error", tc.url, tc.from, tc.to, got)
			}
		case err != nil:
			t.Errorf("%s from %s to %s: %v", tc.url, tc.from, tc.to, err)
		case tc.want == "" && got != nil:
			t.Errorf("%s: %v, want no change", tc.url, got)
		case tc.want != "" && (got == nil || got.String() != tc.want):
			t.Errorf("%s from %s to %s: %v, want %s", tc.url, tc.from, tc.to, got, tc.want)
		}
		if u.String() != tc.url {
			t.Errorf("the caller's URL changed: %s", u)
		}
	}
}
