package qdranttest_test

import (
	"context"
	"fmt"
	"slices"
	"strings"
	"testing"

	qc "github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/status"

	"github.com/streamrec/streamrec/pipeline/qdrant/qdranttest"
)

// conn is one backend under a parity test: clients with the backend's key,
// with no key and with a wrong key, and the test's namespace.
type conn struct {
	ctx           context.Context
	b             *qdranttest.Backend
	c, noKey, bad *qc.Client
	colls         qc.CollectionsClient
	points        qc.PointsClient
	prefix        string
}

func dial(t *testing.T, b *qdranttest.Backend) *conn {
	t.Helper()
	client := func(key string) *qc.Client {
		c, err := qdranttest.Real{Addr: b.Addr, APIKey: key}.Client()
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { c.Close() })
		return c
	}
	c := client(b.APIKey)
	return &conn{ctx: context.Background(), b: b, c: c, noKey: client(""), bad: client("wrong-" + b.APIKey),
		colls: c.GetCollectionsClient(), points: c.GetPointsClient(), prefix: b.Prefix}
}

func (c *conn) n(name string) string { return c.prefix + name }

// show renders a result the same way for both backends: the namespace is
// cut out, errors are code and message.
func (c *conn) show(v any, err error) string {
	s := fmt.Sprint(v)
	if err != nil {
		st, _ := status.FromError(err)
		s += fmt.Sprintf(" | %s: %s", st.Code(), st.Message())
	}
	if c.prefix != "" {
		s = strings.ReplaceAll(s, c.prefix, "")
	}
	return s
}

var wait = true

func id(i int) *qc.PointId { return qc.NewIDUUID(fmt.Sprintf("00000000-0000-5000-8000-%012d", i)) }

func shortID(p *qc.PointId) string { return strings.TrimLeft(p.GetUuid()[24:], "0") }

func (c *conn) create(name string, dim uint64) (bool, error) {
	r, err := c.colls.Create(c.ctx, &qc.CreateCollection{CollectionName: c.n(name),
		VectorsConfig: qc.NewVectorsConfig(&qc.VectorParams{Size: dim, Distance: qc.Distance_Cosine})})
	return r.GetResult(), err
}

func (c *conn) index(field string, t qc.FieldType) error {
	_, err := c.points.CreateFieldIndex(c.ctx, &qc.CreateFieldIndexCollection{CollectionName: c.n("c"), Wait: &wait, FieldName: field, FieldType: t.Enum()})
	return err
}

func (c *conn) upsert(coll string, pts ...*qc.PointStruct) error {
	_, err := c.points.Upsert(c.ctx, &qc.UpsertPoints{CollectionName: c.n(coll), Wait: &wait, Points: pts})
	return err
}

func (c *conn) count(coll string, f *qc.Filter) (uint64, error) {
	exact := true
	r, err := c.points.Count(c.ctx, &qc.CountPoints{CollectionName: c.n(coll), Exact: &exact, Filter: f})
	return r.GetResult().GetCount(), err
}

// query returns "id:score" best first; ties (to 3 decimals) by id, since
// Qdrant orders them arbitrarily.
func (c *conn) query(vec []float32, f *qc.Filter) ([]string, error) {
	limit := uint64(20)
	res, err := c.points.Query(c.ctx, &qc.QueryPoints{CollectionName: c.n("c"), Query: qc.NewQueryDense(vec), Filter: f, Limit: &limit})
	type hit struct {
		id    string
		score string
	}
	var hits []hit
	for _, p := range res.GetResult() {
		hits = append(hits, hit{shortID(p.GetId()), fmt.Sprintf("%.3f", p.GetScore())})
	}
	slices.SortStableFunc(hits, func(a, b hit) int {
		if a.score != b.score {
			return strings.Compare(b.score, a.score)
		}
		return strings.Compare(a.id, b.id)
	})
	out := make([]string, len(hits))
	for i, h := range hits {
		out[i] = h.id + ":" + h.score
	}
	return out, err
}

func (c *conn) drop(name string) (bool, error) {
	r, err := c.colls.Delete(c.ctx, &qc.DeleteCollection{CollectionName: c.n(name)})
	return r.GetResult(), err
}

func (c *conn) aliases() ([]string, error) {
	r, err := c.colls.ListAliases(c.ctx, &qc.ListAliasesRequest{})
	var out []string
	for _, a := range r.GetAliases() {
		if strings.HasPrefix(a.GetAliasName(), c.prefix) {
			out = append(out, a.GetAliasName()+"->"+a.GetCollectionName())
		}
	}
	slices.Sort(out)
	return out, err
}

func (c *conn) updateAliases(ops ...*qc.AliasOperations) (bool, error) {
	r, err := c.colls.UpdateAliases(c.ctx, &qc.ChangeAliases{Actions: ops})
	return r.GetResult(), err
}

func match(key, v string) *qc.Filter {
	return &qc.Filter{Must: []*qc.Condition{qc.NewMatchKeyword(key, v)}}
}

func ptr[T any](v T) *T { return &v }

// parityCases are raw gRPC calls, in order, whose answers the fake must
// give as Qdrant 1.17.1 does (the adapter relies on each of them).
var parityCases = []struct {
	name string
	run  func(c *conn) string
}{
	{"create", func(c *conn) string { return c.show(c.create("c", 3)) }},
	{"create existing", func(c *conn) string { return c.show(c.create("c", 3)) }},
	{"create empty name", func(c *conn) string {
		return c.show(c.colls.Create(c.ctx, &qc.CreateCollection{CollectionName: "", VectorsConfig: qc.NewVectorsConfig(&qc.VectorParams{Size: 3, Distance: qc.Distance_Cosine})}))
	}},
	{"create name with slash", func(c *conn) string { return c.show(c.create("a/b", 3)) }},
	{"index keyword", func(c *conn) string { return c.show("", c.index("kw", qc.FieldType_FieldTypeKeyword)) }},
	{"index float", func(c *conn) string { return c.show("", c.index("fl", qc.FieldType_FieldTypeFloat)) }},
	{"index bool", func(c *conn) string { return c.show("", c.index("bo", qc.FieldType_FieldTypeBool)) }},
	{"index keyword array", func(c *conn) string { return c.show("", c.index("cat", qc.FieldType_FieldTypeKeyword)) }},
	{"index nested", func(c *conn) string { return c.show("", c.index("nest.x", qc.FieldType_FieldTypeKeyword)) }},
	{"index again", func(c *conn) string { return c.show("", c.index("kw", qc.FieldType_FieldTypeKeyword)) }},
	{"index missing collection", func(c *conn) string {
		_, err := c.points.CreateFieldIndex(c.ctx, &qc.CreateFieldIndexCollection{CollectionName: c.n("nope"), Wait: &wait, FieldName: "kw", FieldType: qc.FieldType_FieldTypeKeyword.Enum()})
		return c.show("", err)
	}},
	{"payload schema", func(c *conn) string {
		info, err := c.colls.Get(c.ctx, &qc.GetCollectionInfoRequest{CollectionName: c.n("c")})
		var s []string
		for k, v := range info.GetResult().GetPayloadSchema() {
			s = append(s, k+"="+v.GetDataType().String())
		}
		slices.Sort(s)
		return c.show(s, err)
	}},
	{"upsert payload kinds and a zero vector", func(c *conn) string {
		return c.show("", c.upsert("c",
			&qc.PointStruct{Id: id(1), Vectors: qc.NewVectorsDense([]float32{1, 0, 0}), Payload: qc.NewValueMap(map[string]any{
				"kw": "a", "fl": 1.5, "bo": true, "cat": []any{"food", "tea"}, "nest": map[string]any{"x": "deep", "y": []any{"p", "q"}},
				"objs": []any{map[string]any{"x": "o1"}, map[string]any{"x": "o2"}}, "a.b": "dotted"})},
			&qc.PointStruct{Id: id(2), Vectors: qc.NewVectorsDense([]float32{0, 0, 0}), Payload: qc.NewValueMap(map[string]any{
				"kw": 7, "fl": int64(2), "bo": "true", "cat": "food"})},
			&qc.PointStruct{Id: id(3), Vectors: qc.NewVectorsDense([]float32{0, 2, 0}), Payload: qc.NewValueMap(map[string]any{
				"kw": []any{"a", "b"}, "fl": []any{1.0, 9.0}, "bo": false, "cat": []any{}})},
			&qc.PointStruct{Id: id(4), Vectors: qc.NewVectorsDense([]float32{0, 0, 3}), Payload: qc.NewValueMap(map[string]any{
				"kw": "A", "fl": "3", "bo": []any{true, false}, "nul": nil})},
		))
	}},
	{"count", func(c *conn) string { return c.show(c.count("c", nil)) }},
	{"get known, unknown and repeated ids", func(c *conn) string {
		r, err := c.points.Get(c.ctx, &qc.GetPoints{CollectionName: c.n("c"), Ids: []*qc.PointId{id(2), id(99), id(1), id(2)},
			WithVectors: qc.NewWithVectors(true), WithPayload: qc.NewWithPayload(true)})
		var s []string
		for _, p := range r.GetResult() {
			s = append(s, fmt.Sprintf("%s:%v:%v", shortID(p.GetId()), p.GetVectors().GetVector().GetDense().GetData(), p.GetPayload()["kw"]))
		}
		return c.show(s, err)
	}},
	{"get normalised vector", func(c *conn) string {
		r, err := c.points.Get(c.ctx, &qc.GetPoints{CollectionName: c.n("c"), Ids: []*qc.PointId{id(3)}, WithVectors: qc.NewWithVectors(true)})
		return c.show(r.GetResult()[0].GetVectors().GetVector().GetDense().GetData(), err)
	}},
	{"get bad uuid", func(c *conn) string {
		return c.show(c.points.Get(c.ctx, &qc.GetPoints{CollectionName: c.n("c"), Ids: []*qc.PointId{qc.NewIDUUID("not-a-uuid")}}))
	}},
	{"delete unknown ids", func(c *conn) string {
		_, err := c.points.Delete(c.ctx, &qc.DeletePoints{CollectionName: c.n("c"), Wait: &wait, Points: qc.NewPointsSelector(id(98), id(99))})
		return c.show("", err)
	}},
	{"query", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, nil)) }},
	{"query zero vector", func(c *conn) string { return c.show(c.query([]float32{0, 0, 0}, nil)) }},
	{"query wrong dim", func(c *conn) string { return c.show(c.query([]float32{1, 1}, nil)) }},
	{"keyword", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, match("kw", "a"))) }},
	{"keyword is case sensitive", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, match("kw", "A"))) }},
	{"integer on a keyword field", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewMatchInt("kw", 7)}}))
	}},
	{"keywords any", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewMatchKeywords("kw", "b", "A")}}))
	}},
	{"float range closed", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewRange("fl", &qc.Range{Gte: ptr(1.5), Lte: ptr(2.0)})}}))
	}},
	{"float range open", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewRange("fl", &qc.Range{Gt: ptr(1.5), Lt: ptr(9.0)})}}))
	}},
	{"float range on a string", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewRange("fl", &qc.Range{Gte: ptr(3.0), Lte: ptr(3.0)})}}))
	}},
	{"bool true", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewMatchBool("bo", true)}}))
	}},
	{"bool false", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewMatchBool("bo", false)}}))
	}},
	{"array any element", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, match("cat", "food"))) }},
	{"array leaf", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, match("cat", "tea"))) }},
	{"array wildcard", func(c *conn) string { return c.show(c.count("c", match("cat[]", "tea"))) }},
	{"array index", func(c *conn) string { return c.show(c.count("c", match("cat[0]", "food"))) }},
	{"array index miss", func(c *conn) string { return c.show(c.count("c", match("cat[1]", "food"))) }},
	{"nested key", func(c *conn) string { return c.show(c.count("c", match("nest.x", "deep"))) }},
	{"nested array", func(c *conn) string { return c.show(c.count("c", match("nest.y", "q"))) }},
	{"nested array wildcard", func(c *conn) string { return c.show(c.count("c", match("nest.y[]", "q"))) }},
	{"key into an array of objects", func(c *conn) string { return c.show(c.count("c", match("objs.x", "o2"))) }},
	{"wildcard into an array of objects", func(c *conn) string { return c.show(c.count("c", match("objs[].x", "o2"))) }},
	{"index into an array of objects", func(c *conn) string { return c.show(c.count("c", match("objs[1].x", "o2"))) }},
	{"dotted key unquoted", func(c *conn) string { return c.show(c.count("c", match("a.b", "dotted"))) }},
	{"dotted key quoted", func(c *conn) string { return c.show(c.count("c", match(`"a.b"`, "dotted"))) }},
	{"keyword on an object", func(c *conn) string { return c.show(c.count("c", match("nest", "deep"))) }},
	{"must not", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{MustNot: []*qc.Condition{qc.NewMatchKeyword("kw", "a")}}))
	}},
	{"is empty", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewIsEmpty("cat")}}))
	}},
	{"is empty nested", func(c *conn) string {
		return c.show(c.count("c", &qc.Filter{Must: []*qc.Condition{qc.NewIsEmpty("objs[].x")}}))
	}},
	{"is null", func(c *conn) string {
		return c.show(c.count("c", &qc.Filter{Must: []*qc.Condition{qc.NewIsNull("nul")}}))
	}},
	{"has id with an unknown id", func(c *conn) string {
		return c.show(c.query([]float32{1, 1, 1}, &qc.Filter{Must: []*qc.Condition{qc.NewHasID(id(1), id(77))}}))
	}},
	{"missing field", func(c *conn) string { return c.show(c.query([]float32{1, 1, 1}, match("kw2", "a"))) }},
	{"upsert bad id", func(c *conn) string {
		return c.show("", c.upsert("c", &qc.PointStruct{Id: id(10), Vectors: qc.NewVectorsDense([]float32{1, 1, 1})},
			&qc.PointStruct{Id: qc.NewIDUUID("bad"), Vectors: qc.NewVectorsDense([]float32{1, 1, 1})}))
	}},
	{"count after bad id: nothing written", func(c *conn) string { return c.show(c.count("c", nil)) }},
	{"upsert all of a wrong dim", func(c *conn) string {
		return c.show("", c.upsert("c", &qc.PointStruct{Id: id(11), Vectors: qc.NewVectorsDense([]float32{1, 1})},
			&qc.PointStruct{Id: id(12), Vectors: qc.NewVectorsDense([]float32{1, 1})}))
	}},
	{"count after wrong dim: nothing written", func(c *conn) string { return c.show(c.count("c", nil)) }},
	{"upsert one of a wrong dim", func(c *conn) string {
		// Which of the others Qdrant writes is arbitrary; only the error
		// is compared.
		return c.show("", c.upsert("c", &qc.PointStruct{Id: id(13), Vectors: qc.NewVectorsDense([]float32{1, 1, 1})},
			&qc.PointStruct{Id: id(14), Vectors: qc.NewVectorsDense([]float32{1, 1, 1, 1})}))
	}},
	{"delete what of it was written", func(c *conn) string {
		_, err := c.points.Delete(c.ctx, &qc.DeletePoints{CollectionName: c.n("c"), Wait: &wait, Points: qc.NewPointsSelector(id(13))})
		return c.show("", err)
	}},
	{"upsert empty vector", func(c *conn) string {
		return c.show("", c.upsert("c", &qc.PointStruct{Id: id(15), Vectors: qc.NewVectorsDense([]float32{})}))
	}},
	{"create second", func(c *conn) string { return c.show(c.create("d", 3)) }},
	{"delete missing alias", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasDelete(c.n("al")))) }},
	{"alias to missing collection", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasCreate(c.n("al"), c.n("nope")))) }},
	{"create alias", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasCreate(c.n("al"), c.n("c")))) }},
	{"create over an alias", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasCreate(c.n("al"), c.n("d")))) }},
	{"aliases", func(c *conn) string { return c.show(c.aliases()) }},
	{"switch alias (delete and create)", func(c *conn) string {
		return c.show(c.updateAliases(qc.NewAliasDelete(c.n("al")), qc.NewAliasCreate(c.n("al"), c.n("c"))))
	}},
	{"count through alias", func(c *conn) string { return c.show(c.count("al", nil)) }},
	{"alias named as a collection", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasCreate(c.n("d"), c.n("c")))) }},
	{"rename missing alias", func(c *conn) string { return c.show(c.updateAliases(qc.NewAliasRename(c.n("zz"), c.n("yy")))) }},
	{"actions before a failing one stay", func(c *conn) string {
		return c.show(c.updateAliases(qc.NewAliasCreate(c.n("al2"), c.n("c")), qc.NewAliasCreate(c.n("al3"), c.n("nope"))))
	}},
	{"aliases after partial", func(c *conn) string { return c.show(c.aliases()) }},
	{"collection named as an alias", func(c *conn) string { return c.show(c.create("al", 3)) }},
	{"exists through alias", func(c *conn) string {
		r, err := c.colls.CollectionExists(c.ctx, &qc.CollectionExistsRequest{CollectionName: c.n("al")})
		return c.show(r.GetResult().GetExists(), err)
	}},
	{"info through alias", func(c *conn) string {
		r, err := c.colls.Get(c.ctx, &qc.GetCollectionInfoRequest{CollectionName: c.n("al")})
		return c.show(r.GetResult().GetConfig().GetParams().GetVectorsConfig().GetParams().GetSize(), err)
	}},
	{"collection aliases", func(c *conn) string {
		r, err := c.colls.ListCollectionAliases(c.ctx, &qc.ListCollectionAliasesRequest{CollectionName: c.n("c")})
		return c.show(len(r.GetAliases()), err)
	}},
	{"collection aliases of a missing collection", func(c *conn) string {
		r, err := c.colls.ListCollectionAliases(c.ctx, &qc.ListCollectionAliasesRequest{CollectionName: c.n("nope")})
		return c.show(len(r.GetAliases()), err)
	}},
	{"delete a collection by its alias", func(c *conn) string { return c.show(c.drop("al")) }},
	{"delete a missing collection", func(c *conn) string { return c.show(c.drop("nope")) }},
	{"count missing", func(c *conn) string { return c.show(c.count("nope", nil)) }},
	{"upsert missing", func(c *conn) string {
		return c.show("", c.upsert("nope", &qc.PointStruct{Id: id(1), Vectors: qc.NewVectorsDense([]float32{1, 1, 1})}))
	}},
	{"no key: health check", func(c *conn) string {
		r, err := c.noKey.HealthCheck(c.ctx)
		return c.show(r.GetVersion(), err)
	}},
	{"no key: list", func(c *conn) string { return c.show(c.noKey.ListCollections(c.ctx)) }},
	{"wrong key: health check", func(c *conn) string {
		r, err := c.bad.HealthCheck(c.ctx)
		return c.show(r.GetVersion(), err)
	}},
	{"wrong key: count", func(c *conn) string {
		return c.show(c.bad.Count(c.ctx, &qc.CountPoints{CollectionName: c.n("c")}))
	}},
	{"drop the target of aliases", func(c *conn) string { return c.show(c.drop("c")) }},
	{"aliases after the drop", func(c *conn) string { return c.show(c.aliases()) }},
	{"count through a dropped alias", func(c *conn) string { return c.show(c.count("al", nil)) }},
}

// TestFakeMatchesReal runs the same raw calls against the fake and the real
// server and compares the answers, so the fake stays a faithful Qdrant for
// what the adapter uses.
func TestFakeMatchesReal(t *testing.T) {
	real := dial(t, qdranttest.Open(t, qdranttest.KindReal))
	fake := dial(t, qdranttest.Open(t, qdranttest.KindFake, qdranttest.WithAPIKey(real.b.APIKey)))
	if real.b.APIKey == "" {
		t.Skip("the real server needs no API key; the key cases would differ")
	}
	t.Logf("qdrant=fake vs qdrant=real (Qdrant %s at %s)", real.b.Real.Version, real.b.Addr)
	for _, tc := range parityCases {
		f, r := tc.run(fake), tc.run(real)
		if f != r {
			t.Errorf("%s:\n fake: %s\n real: %s", tc.name, f, r)
		}
	}
}
