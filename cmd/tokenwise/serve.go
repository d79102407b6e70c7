package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"io"
	iofs "io/fs"
	"log/slog"
	"net"
	"net/http"
	"os"
	"os/signal"
	"syscall"

	"github.com/tokenwise/tokenwise/gateway"
	"github.com/tokenwise/tokenwise/policies"
)

// serve runs the gateway until SIGINT or SIGTERM (graceful: running
// streams get limits.shutdown_grace to finish); SIGHUP reloads the keys of
// the gateway file and the policy directory.
func serve(args []string, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("serve", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cfgPath := fs.String("config", "gateway.yaml", "the gateway file")
	listen := fs.String("listen", "", "listen address (overrides the file's listen)")
	level := fs.String("log-level", "info", "debug, info, warn or error")
	pos, err := parse(fs, args)
	if err != nil {
		return usageStatus(err)
	}
	if len(pos) > 0 {
		// Not ignored: serve would start on ./gateway.yaml instead.
		fmt.Fprintf(stderr, "tokenwise serve: unexpected argument %q: name the gateway file with -config FILE\n", pos[0])
		return 2
	}
	var lvl slog.Level
	if err := lvl.UnmarshalText([]byte(*level)); err != nil {
		fmt.Fprintln(stderr, "tokenwise serve: -log-level:", err)
		return 2
	}
	logger := slog.New(slog.NewJSONHandler(stderr, &slog.HandlerOptions{Level: lvl}))
	cfg, err := gateway.LoadConfig(*cfgPath)
	if errors.Is(err, iofs.ErrNotExist) {
		fmt.Fprintf(stderr, "tokenwise serve: no gateway file %s: write one to start from with `tokenwise gateway init`, or name yours with -config FILE\n", *cfgPath)
		return 1
	}
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	if *listen != "" {
		cfg.Listen = *listen
	}
	srv, err := gateway.New(cfg, gateway.WithLogger(logger))
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	l, err := net.Listen("tcp", srv.Addr())
	if err != nil {
		fmt.Fprintln(stderr, "tokenwise serve:", err)
		_ = srv.Close()
		return 1
	}
	// The signals are caught before the address is printed: whoever reads
	// it may signal at once.
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGINT, syscall.SIGTERM, syscall.SIGHUP)
	defer signal.Stop(sig)
	// The address, once listening: scripts (and tests) read it, the URL
	// last on the line. A listener of every interface (":8787", whose
	// address reads [::]:8787) is called on the loopback.
	fmt.Fprintf(stdout, "tokenwise gateway listening on %shttp://%s\n", everyInterface(l.Addr()), listenURLAddr(cfg.Listen, l.Addr()))
	done := make(chan error, 1)
	go func() { done <- srv.Serve(l) }()
	for {
		select {
		case err := <-done:
			if !errors.Is(err, http.ErrServerClosed) {
				fmt.Fprintln(stderr, "tokenwise serve:", err)
				return 1
			}
			return 0
		case s := <-sig:
			if s == syscall.SIGHUP {
				if err := srv.Reload(); err != nil {
					logger.Warn("tokenwise serve: reload", "err", err)
				}
				continue
			}
			ctx, cancel := context.WithTimeout(context.Background(), cfg.ShutdownGrace())
			err := srv.Shutdown(ctx)
			cancel()
			if err != nil {
				logger.Warn("tokenwise serve: shutdown cut requests still running", "err", err)
				return 1
			}
			return 0
		}
	}
}

// gatewayCheck checks a gateway file and the policy directory it names:
// every problem with its file:line:col and field; exit 1 on any.
func gatewayCheck(args []string, stdout, stderr io.Writer) int {
	if len(args) == 1 && isHelpFlag(args[0]) {
		fmt.Fprint(stdout, usage)
		return 0
	}
	if len(args) != 1 {
		fmt.Fprint(stderr, usage)
		return 2
	}
	cfg, err := gateway.LoadConfig(args[0])
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	set, err := policies.LoadDir(cfg.PolicyDir())
	if err != nil {
		printErr(stderr, err)
		return 1
	}
	if problems := unservable(set); len(problems) > 0 {
		for _, pr := range problems {
			fmt.Fprintln(stderr, pr)
		}
		return 1
	}
	errs, warnings := cfg.KeyTeamProblems(set.Names(), set.Policy(policies.DefaultTeam).Teams.Unknown)
	warnings = append(cfg.Warnings(), warnings...)
	for _, p := range warnings {
		fmt.Fprintf(stdout, "warning: %s\n", p)
	}
	if len(errs) > 0 {
		for _, p := range errs {
			fmt.Fprintln(stderr, p)
		}
		return 1
	}
	fmt.Fprintf(stdout, "%s: ok (%d upstreams, %d keys; policies %s: %d teams: %v)\n", args[0], len(cfg.Upstreams), len(cfg.Keys), cfg.PolicyDir(), len(set.Teams), set.Names())
	return 0
}

// gatewaySchema prints the JSON Schema of gateway files.
func gatewaySchema(stdout, stderr io.Writer) int {
	b, err := gateway.JSONSchema()
	if err != nil {
		fmt.Fprintln(stderr, err)
		return 1
	}
	_, _ = stdout.Write(b)
	return 0
}

// listenURLAddr is the host:port a client on this machine calls a gateway
// at that was told to listen on listen and listens on a: the port the
// listener got (":0" picks one), the host as callAddr makes it of listen's.
func listenURLAddr(listen string, a net.Addr) string {
	_, port, err := net.SplitHostPort(a.String())
	if err != nil {
		return a.String()
	}
	host, _, err := net.SplitHostPort(listen)
	if err != nil {
		host = ""
	}
	return callAddr(net.JoinHostPort(host, port))
}

// everyInterface says so when a listens on every interface, whose URL
// names the loopback only.
func everyInterface(a net.Addr) string {
	if ta, ok := a.(*net.TCPAddr); ok && ta.IP.IsUnspecified() {
		return fmt.Sprintf("every interface, port %d: ", ta.Port)
	}
	return ""
}
