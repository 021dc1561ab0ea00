// Command ferretdb runs FerretDB's embeddable package on its SQLite backend, listening on
// loopback. FerretDB's own cmd/ferretdb binary panics when built with `go install` (its
// generated version file is missing from the module), so the project builds this instead.
package main

import (
	"context"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"syscall"

	"github.com/FerretDB/FerretDB/ferretdb"
)

func main() {
	listen := flag.String("listen", "127.0.0.1:27018", "TCP address to listen on")
	dir := flag.String("dir", "data/ferretdb", "directory of the SQLite databases")
	flag.Parse()

	abs, err := filepath.Abs(*dir)
	if err != nil {
		fail(err)
	}
	if err := os.MkdirAll(abs, 0o700); err != nil {
		fail(err)
	}
	// secure_delete zeroes freed pages, so a deleted document (a destroyed data key) leaves no
	// readable bytes behind in the database file. WAL with synchronous=NORMAL syncs at
	// checkpoints instead of at every write: FerretDB commits each document of a bulk write on
	// its own, and with an fsync each that is tens of documents per second on a slow disk. A
	// crashed server process loses nothing this way; a power cut may lose the last commits,
	// which a local development and CI server can afford.
	q := url.Values{"_pragma": []string{"secure_delete(1)", "journal_mode(wal)", "synchronous(normal)", "busy_timeout(10000)"}}
	sqliteURL := (&url.URL{Scheme: "file", Path: abs + "/", RawQuery: q.Encode()}).String()

	logger := slog.New(slog.NewTextHandler(os.Stderr, &slog.HandlerOptions{Level: slog.LevelError}))
	f, err := ferretdb.New(&ferretdb.Config{
		Listener:  ferretdb.ListenerConfig{TCP: *listen},
		Handler:   "sqlite",
		SQLiteURL: sqliteURL,
		Logger:    logger,
	})
	if err != nil {
		fail(err)
	}

	ctx, stop := signal.NotifyContext(context.Background(), syscall.SIGINT, syscall.SIGTERM)
	defer stop()
	done := make(chan struct{})
	go func() {
		_ = f.Run(ctx)
		close(done)
	}()
	fmt.Printf("ferretdb listening on %s, data in %s\n", *listen, abs)
	<-done
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ferretdb:", err)
	os.Exit(1)
}
