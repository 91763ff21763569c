// Package catalogtest builds large catalogs for benchmarks and scale tests.
package catalogtest

import (
	"context"
	"database/sql"
	"fmt"

	_ "modernc.org/sqlite" // the catalog's driver

	"github.com/sregistry/sregistry/internal/catalog"
)

// Fill creates the catalog at dbPath (schema and migrations through
// catalog.Open) and adds n containers spread over 100 nested-group
// collections, in one transaction — as fast as SQLite allows, so a
// 10,000-row catalog takes a fraction of a second to build.
func Fill(ctx context.Context, dbPath string, n int) error {
	cat, err := catalog.Open(ctx, dbPath)
	if err != nil {
		return err
	}
	cat.Close()
	db, err := sql.Open("sqlite", dbPath)
	if err != nil {
		return err
	}
	defer db.Close()
	tx, err := db.BeginTx(ctx, nil)
	if err != nil {
		return err
	}
	defer tx.Rollback()
	for c := 1; c <= 100; c++ {
		if _, err := tx.ExecContext(ctx, `INSERT INTO collection (id, name, token, created_at) VALUES (?, ?, 'tok', '2026-11-24 10:00:00')`, c, fmt.Sprintf("group%d/sub", c)); err != nil {
			return err
		}
	}
	stmt, err := tx.PrepareContext(ctx, `INSERT INTO container (created_at, metrics, name, tag, image, url, uri, client, version, collection_id) VALUES (?, ?, ?, ?, ?, ?, ?, 'gitlab', ?, ?)`)
	if err != nil {
		return err
	}
	defer stmt.Close()
	metrics := `{"type": "container", "data": {"attributes": {"labels": {"org.label-schema.build-arch": "amd64"}}}}`
	for i := 0; i < n; i++ {
		c := i%100 + 1
		name, tag := fmt.Sprintf("proj%d", i/100), fmt.Sprintf("v%d", i%7)
		ver := fmt.Sprintf("%064x", i)
		coll := fmt.Sprintf("group%d/sub", c)
		uri := fmt.Sprintf("%s/%s:%s@%s", coll, name, tag, ver)
		img := fmt.Sprintf("/data/shub/%s/%s/%s@%s.sif", coll, name, tag, ver)
		if _, err := stmt.ExecContext(ctx, "2026-11-24 10:00:00.000000", metrics, name, tag, img, coll+"/"+name, uri, ver, c); err != nil {
			return err
		}
	}
	return tx.Commit()
}
