package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"strings"
	"time"

	"github.com/tokenwise/tokenwise/policies"
)

// catalogImport is `tokenwise catalog import [-o FILE] [--provider P,...]
// PRICES.json`: it reads LiteLLM's model_prices_and_context_window.json
// and writes a policy file with the models it could map (extend it from a
// team's policy to override the embedded catalog), and reports on stderr
// every entry it skipped and why.
func catalogImport(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("catalog import", flag.ContinueOnError)
	fs.SetOutput(stderr)
	out := fs.String("o", "", "write the policy file here instead of stdout")
	prov := fs.String("provider", "", "comma-separated litellm_provider values to keep (default: all)")
	pos, err := parse(fs, args)
	if err != nil || len(pos) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	f, err := os.Open(pos[0])
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	defer f.Close()
	var providers []string
	if *prov != "" {
		providers = strings.Split(*prov, ",")
	}
	im, err := policies.ImportLiteLLM(f, providers...)
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	header := fmt.Sprintf("tokenwise catalog import %s (%s): %d models, %d skipped.\nPrices in USD per 1M tokens; the embedded catalog is dated %s.",
		pos[0], time.Now().UTC().Format("2006-01-02"), len(im.Models), len(im.Skipped), policies.CatalogDate)
	src := im.YAML(header)
	if *out == "" {
		_, err = stdout.Write(src)
	} else {
		err = os.WriteFile(*out, src, 0o644)
	}
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	for _, s := range im.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", s.Model, s.Reason)
	}
	fmt.Fprintf(stderr, "imported %d models, skipped %d\n", len(im.Models), len(im.Skipped))
	return 0
}
