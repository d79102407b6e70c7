package main

import (
	"flag"
	"fmt"
	"io"
	"os"
	"path/filepath"
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
		return usageStatus(err)
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
	// The output must load: a file the loader refuses (too many models for
	// one file, say) is an error here, not at the next policy check.
	if *out == "" {
		src := im.YAML(header)
		if _, err := policies.LoadBytes(src, "catalog.yaml"); err != nil {
			fmt.Fprintf(stderr, "the imported models do not load as one policy file (%d models); write them with -o FILE, which splits them into a chain of files:\n%v\n", len(im.Models), err)
			return 1
		}
		if _, err := stdout.Write(src); err != nil {
			fmt.Fprintln(stderr, err)
			return 1
		}
	} else {
		files := im.YAMLFiles(header, *out)
		for _, f := range files {
			if _, err := policies.LoadBytes(f.Data, f.Path); err != nil {
				fmt.Fprintf(stderr, "the import's output does not load: %v\n", err)
				return 1
			}
		}
		for _, f := range files {
			if err := os.MkdirAll(filepath.Dir(f.Path), 0o755); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
			if err := os.WriteFile(f.Path, f.Data, 0o644); err != nil {
				fmt.Fprintln(stderr, err)
				return 1
			}
		}
		if _, err := policies.LoadFileExtends(*out); err != nil {
			fmt.Fprintf(stderr, "the import's output does not load: %v\n", err)
			return 1
		}
		if len(files) > 1 {
			fmt.Fprintf(stderr, "wrote %s, extending %d parts in %s\n", *out, len(files)-1, filepath.Dir(files[1].Path))
		}
		if fi, err := os.Stat(filepath.Join(filepath.Dir(*out), policies.DefaultTeam+".yaml")); err == nil && fi.Mode().IsRegular() &&
			filepath.Base(*out) != policies.DefaultTeam+".yaml" {
			// A file beside default.yaml is a team's policy to the
			// registry: the catalog would serve a team of its name.
			team := strings.TrimSuffix(filepath.Base(*out), filepath.Ext(*out))
			fmt.Fprintf(stderr, "note: %s is in a policy directory, where it is the policy of a team %q; "+
				"write it in a subdirectory (e.g. %s) and extend it from your policies (extends: %s)\n",
				*out, team, filepath.Join(filepath.Dir(*out), "bases", filepath.Base(*out)), filepath.ToSlash(filepath.Join("bases", filepath.Base(*out))))
		}
	}
	for _, s := range im.Skipped {
		fmt.Fprintf(stderr, "skipped %s: %s\n", s.Model, s.Reason)
	}
	fmt.Fprintf(stderr, "imported %d models, skipped %d\n", len(im.Models), len(im.Skipped))
	return 0
}
