// Command ferretdb runs FerretDB's embeddable package on its SQLite backend, listening on
// loopback. FerretDB's own cmd/ferretdb binary panics when built with `go install` (its
// generated version file is missing from the module), so the project builds this instead.
package main

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"log/slog"
	"net/url"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"syscall"
	"time"

	"github.com/FerretDB/FerretDB/ferretdb"
	_ "modernc.org/sqlite"
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
	go indexIDs(ctx, abs, logger)
	<-done
}

// indexIDs gives every collection table an index on the expression FerretDB filters _id with.
// FerretDB pushes a filter on _id down to SQLite as `_ferretdb_sjson->'$._id' = ?`, but the
// unique index it creates is on `_ferretdb_sjson->"_id"`, which SQLite does not match to that
// expression: without this every lookup by _id scans its table. Tables appear with collections,
// so the directory is looked at again every half second.
func indexIDs(ctx context.Context, dir string, logger *slog.Logger) {
	done := map[string]bool{}
	for {
		files, _ := filepath.Glob(filepath.Join(dir, "*.sqlite"))
		for _, f := range files {
			if err := indexFile(ctx, f, done); err != nil && ctx.Err() == nil {
				logger.Error("indexing _id", "file", f, "error", err)
			}
		}
		select {
		case <-ctx.Done():
			return
		case <-time.After(500 * time.Millisecond):
		}
	}
}

func indexFile(ctx context.Context, file string, done map[string]bool) error {
	db, err := sql.Open("sqlite", "file:"+file+"?_pragma=busy_timeout(10000)")
	if err != nil {
		return err
	}
	defer db.Close()
	rows, err := db.QueryContext(ctx, `SELECT table_name FROM _ferretdb_collections`)
	if err != nil {
		if strings.Contains(err.Error(), "no such table") {
			return nil
		}
		return err
	}
	var tables []string
	for rows.Next() {
		var t string
		if err := rows.Scan(&t); err != nil {
			rows.Close()
			return err
		}
		if !done[file+"\x00"+t] {
			tables = append(tables, t)
		}
	}
	rows.Close()
	for _, t := range tables {
		q := fmt.Sprintf(`CREATE INDEX IF NOT EXISTS %q ON %q (_ferretdb_sjson->'$._id')`, t+"_id_expr", t)
		if _, err := db.ExecContext(ctx, q); err != nil {
			return err
		}
		done[file+"\x00"+t] = true
	}
	return nil
}

func fail(err error) {
	fmt.Fprintln(os.Stderr, "ferretdb:", err)
	os.Exit(1)
}
