package schemas

import (
	"embed"
	"io/fs"
)

// File names of the JSON Schema (draft 2020-12) documents of the v1
// contracts, as SchemaFS and SchemaJSON know them. Each document's $id ends
// with its file name.
const (
	SchemaClickstream = "clickstream.v1.schema.json"
	SchemaCatalog     = "catalog.v1.schema.json"
	SchemaRecoRequest = "reco_request.v1.schema.json"
	SchemaRecoReply   = "reco_reply.v1.schema.json"
)

//go:embed json/*.schema.json
var schemaFiles embed.FS

//go:embed clickhouse/*.sql
var clickhouseFiles embed.FS

// ClickHouseMigrations returns the versioned ClickHouse DDL files
// (NNNN_name.sql), one per migration at the root, in the order
// `streamrec migrate` applies them.
func ClickHouseMigrations() fs.FS {
	sub, err := fs.Sub(clickhouseFiles, "clickhouse")
	if err != nil {
		panic(err) // "clickhouse" is a valid path, so fs.Sub cannot fail
	}
	return sub
}

// SchemaFS returns the JSON Schema documents, one file per contract at the
// root, for serving or bundling.
func SchemaFS() fs.FS {
	sub, err := fs.Sub(schemaFiles, "json")
	if err != nil {
		panic(err) // "json" is a valid path, so fs.Sub cannot fail
	}
	return sub
}

// SchemaJSON returns the JSON Schema document named name, such as
// SchemaClickstream. An unknown name gives an error wrapping fs.ErrNotExist.
func SchemaJSON(name string) ([]byte, error) {
	return fs.ReadFile(SchemaFS(), name)
}
