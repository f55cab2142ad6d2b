// Package qdranttest gives tests a Qdrant to run against: a real server, and
// an in-process fake that speaks Qdrant's protocol.
//
// # The real server
//
// RealServer returns the test binary's real Qdrant: the one named by
// STREAMREC_QDRANT_ADDR (and STREAMREC_QDRANT_API_KEY), or else one it
// starts on first use with scripts/qdrant.sh (binary from QDRANT_BIN, or
// unpacked from ../shared/tools/qdrant into .cache/qdrant), on free loopback
// ports, requiring a random API key. A test package that uses it stops that
// server after its tests from TestMain:
//
//	func TestMain(m *testing.M) { goleak.VerifyTestMain(qdranttest.Wrap(m)) }
//
// Without a binary, tests that need the server skip; with
// STREAMREC_REQUIRE_QDRANT=1 they fail instead. Tests share the server and
// keep to a namespace of their own (Real.Namespace, Backend.Name,
// Prefixed), so test binaries may share one server too. StartReal starts a
// server of a test's own, for TLS or for stopping, killing and restarting
// it.
//
// Each runs a test body against both backends as subtests qdrant=fake and
// qdrant=real; Open gives the body its Backend.
//
// # The fake
//
// Server is a TEST FAKE of Qdrant: an in-process gRPC server built on the
// services generated in github.com/qdrant/go-client/qdrant, so tests point
// the real client at it. It is not Qdrant and must never serve production
// traffic. The real server is the reference (issue 13: the conformance
// suite and the adapter's tests run on both, and TestFakeMatchesReal
// compares the fake's answers with Qdrant 1.17.1's call by call). The fake
// still earns its place where the real server cannot go:
//
//   - fault injection: FailNext makes chosen calls fail with a gRPC code
//     (Unavailable, ResourceExhausted, ...) to test retries and give-ups
//     deterministically;
//   - call counts (Calls), to test batching and that retries stop;
//   - speed and no binary: it starts in microseconds, needs nothing
//     installed, and serves each test a server of its own.
//
// It keeps everything in memory and implements the subset of the API that
// streamrec's adapter uses, answering as Qdrant 1.17.1 does for that subset
// (codes and messages included):
//
//   - Qdrant: HealthCheck (no API key needed, as in Qdrant).
//   - Collections: Create (single unnamed dense vector, Cosine distance),
//     Get, List, CollectionExists, Delete (also drops the collection's
//     aliases; does not resolve aliases; result=false for a missing
//     collection), UpdateAliases (create, delete, rename, applied in order
//     under one lock like Qdrant, earlier actions staying applied when a
//     later one fails), ListAliases, ListCollectionAliases (empty for a
//     missing collection).
//   - Points: Upsert, Delete (by ids or filter), Get, Query (nearest by a
//     dense vector, filter, score threshold, limit, offset, with_payload,
//     with_vectors), Count, CreateFieldIndex.
//
// Like Qdrant it normalises vectors at upsert for Cosine (so Get returns
// unit vectors; a zero vector stays zero and scores 0), resolves aliases in
// point operations, returns NotFound ("Not found: Collection `x` doesn't
// exist!") for missing collections and InvalidArgument ("Wrong input:
// Vector dimension error: expected dim: 384, got 3") for vectors of the
// wrong size. An upsert batch with such a vector fails, but the batch's
// other points are written: Qdrant writes an arbitrary subset of them, the
// fake all of them. Filters support must, should, must_not, min_should and
// nested filters with field conditions (match keyword, integer, bool,
// keywords, integers; range), has_id, is_empty and is_null, on payload key
// paths as Qdrant reads them (a.b, a[], a[0], "quoted.key"). Everything
// else answers Unimplemented.
//
// With WithAPIKey it wants the key in the api-key header (or as an
// Authorization bearer token) and answers Unauthenticated without it or
// with a wrong one, as Qdrant does; WithTLS serves TLS.
package qdranttest
