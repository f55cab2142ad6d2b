package qdranttest

import (
	"fmt"
	"math"
	"regexp"
	"strconv"
	"strings"
	"sync"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// state is what the three services share: collections and aliases.
type state struct {
	mu          sync.RWMutex
	collections map[string]*collection
	aliases     map[string]string // alias -> collection
	opID        uint64
}

// collection is one collection with a single unnamed dense vector.
type collection struct {
	name     string
	dim      int
	distance qdrant.Distance
	points   map[string]*point // by idKey
	indexes  map[string]qdrant.FieldType
}

// point is a stored point; vec is normalised for Cosine.
type point struct {
	id      *qdrant.PointId
	vec     []float32
	payload map[string]*qdrant.Value
}

func newState() *state {
	return &state{collections: map[string]*collection{}, aliases: map[string]string{}}
}

// resolve returns the collection name or alias target; callers hold mu.
func (s *state) resolve(name string) (*collection, error) {
	if c, ok := s.collections[name]; ok {
		return c, nil
	}
	if target, ok := s.aliases[name]; ok {
		if c, ok := s.collections[target]; ok {
			return c, nil
		}
	}
	return nil, errNoCollection(name)
}

// nextOp returns a new operation id; callers hold mu for writing.
func (s *state) nextOp() *uint64 {
	s.opID++
	id := s.opID
	return &id
}

var uuidRE = regexp.MustCompile(`^[0-9a-fA-F]{8}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{4}-?[0-9a-fA-F]{12}$`)

// canonicalID validates id and returns its map key and canonical form
// (lower-case hyphenated UUIDs, as Qdrant returns them).
func canonicalID(id *qdrant.PointId) (string, *qdrant.PointId, error) {
	switch v := id.GetPointIdOptions().(type) {
	case *qdrant.PointId_Num:
		return "n:" + strconv.FormatUint(v.Num, 10), id, nil
	case *qdrant.PointId_Uuid:
		if !uuidRE.MatchString(v.Uuid) {
			return "", nil, status.Errorf(codes.InvalidArgument, "Unable to parse UUID: %s", v.Uuid)
		}
		h := strings.ToLower(strings.ReplaceAll(v.Uuid, "-", ""))
		u := h[0:8] + "-" + h[8:12] + "-" + h[12:16] + "-" + h[16:20] + "-" + h[20:32]
		return "u:" + u, qdrant.NewIDUUID(u), nil
	default:
		return "", nil, errWrongInput("point id is empty")
	}
}

// denseVector extracts a dense vector from an upserted point.
func denseVector(v *qdrant.Vectors) ([]float32, error) {
	vec := v.GetVector()
	if vec == nil {
		if v.GetVectors() != nil {
			return nil, status.Error(codes.Unimplemented, "qdranttest: named vectors are not supported")
		}
		return nil, errWrongInput("point has no vector")
	}
	if d := vec.GetDense(); d != nil {
		return d.GetData(), nil
	}
	if vec.GetSparse() != nil || vec.GetMultiDense() != nil || vec.GetDocument() != nil {
		return nil, status.Error(codes.Unimplemented, "qdranttest: only dense vectors are supported")
	}
	return vec.GetData(), nil //nolint:staticcheck // deprecated field still accepted by Qdrant
}

// checkDim returns Qdrant's error for a vector of the wrong size.
func checkDim(c *collection, n int) error {
	if n != c.dim {
		return errWrongInput("Vector dimension error: expected dim: %d, got %d", c.dim, n)
	}
	return nil
}

// normalize returns v scaled to unit length, as Qdrant does for Cosine; a
// zero vector stays zero.
func normalize(v []float32) []float32 {
	var sum float64
	for _, x := range v {
		sum += float64(x) * float64(x)
	}
	out := make([]float32, len(v))
	if sum < 1e-18 {
		copy(out, v)
		return out
	}
	n := math.Sqrt(sum)
	for i, x := range v {
		out[i] = float32(float64(x) / n)
	}
	return out
}

// dot is the dot product of two equal-length vectors.
func dot(a, b []float32) float32 {
	var s float64
	for i := range a {
		s += float64(a[i]) * float64(b[i])
	}
	return float32(s)
}

// payloadFor applies a with_payload selector; nil means no payload.
func payloadFor(p map[string]*qdrant.Value, sel *qdrant.WithPayloadSelector) map[string]*qdrant.Value {
	if sel == nil || len(p) == 0 {
		return nil
	}
	keep := func(k string) bool { return true }
	switch o := sel.GetSelectorOptions().(type) {
	case *qdrant.WithPayloadSelector_Enable:
		if !o.Enable {
			return nil
		}
	case *qdrant.WithPayloadSelector_Include:
		set := toSet(o.Include.GetFields())
		keep = func(k string) bool { return set[k] }
	case *qdrant.WithPayloadSelector_Exclude:
		set := toSet(o.Exclude.GetFields())
		keep = func(k string) bool { return !set[k] }
	default:
		return nil
	}
	out := make(map[string]*qdrant.Value, len(p))
	for k, v := range p {
		if keep(k) {
			out[k] = proto.Clone(v).(*qdrant.Value)
		}
	}
	return out
}

// vectorsFor applies a with_vectors selector; nil means no vector.
func vectorsFor(vec []float32, sel *qdrant.WithVectorsSelector) *qdrant.VectorsOutput {
	if sel == nil {
		return nil
	}
	switch o := sel.GetSelectorOptions().(type) {
	case *qdrant.WithVectorsSelector_Enable:
		if !o.Enable {
			return nil
		}
	case *qdrant.WithVectorsSelector_Include:
		// The default vector has the empty name.
		if !toSet(o.Include.GetNames())[""] {
			return nil
		}
	default:
		return nil
	}
	data := append([]float32(nil), vec...)
	return &qdrant.VectorsOutput{VectorsOptions: &qdrant.VectorsOutput_Vector{
		Vector: &qdrant.VectorOutput{Vector: &qdrant.VectorOutput_Dense{Dense: &qdrant.DenseVector{Data: data}}},
	}}
}

func toSet(xs []string) map[string]bool {
	m := make(map[string]bool, len(xs))
	for _, x := range xs {
		m[x] = true
	}
	return m
}

// matchFilter reports whether p passes f; nil passes everything.
func matchFilter(f *qdrant.Filter, key string, p *point) (bool, error) {
	if f == nil {
		return true, nil
	}
	for _, c := range f.GetMust() {
		ok, err := matchCondition(c, key, p)
		if err != nil || !ok {
			return false, err
		}
	}
	for _, c := range f.GetMustNot() {
		ok, err := matchCondition(c, key, p)
		if err != nil || ok {
			return false, err
		}
	}
	if len(f.GetShould()) > 0 {
		any := false
		for _, c := range f.GetShould() {
			ok, err := matchCondition(c, key, p)
			if err != nil {
				return false, err
			}
			if ok {
				any = true
				break
			}
		}
		if !any {
			return false, nil
		}
	}
	if ms := f.GetMinShould(); ms != nil {
		n := uint64(0)
		for _, c := range ms.GetConditions() {
			ok, err := matchCondition(c, key, p)
			if err != nil {
				return false, err
			}
			if ok {
				n++
			}
		}
		if n < ms.GetMinCount() {
			return false, nil
		}
	}
	return true, nil
}

// matchCondition evaluates one condition against p.
func matchCondition(c *qdrant.Condition, key string, p *point) (bool, error) {
	switch o := c.GetConditionOneOf().(type) {
	case *qdrant.Condition_Field:
		vals, err := lookup(p.payload, o.Field.GetKey())
		if err != nil {
			return false, err
		}
		return matchField(o.Field, vals)
	case *qdrant.Condition_HasId:
		for _, id := range o.HasId.GetHasId() {
			k, _, err := canonicalID(id)
			if err != nil {
				return false, err
			}
			if k == key {
				return true, nil
			}
		}
		return false, nil
	case *qdrant.Condition_Filter:
		return matchFilter(o.Filter, key, p)
	case *qdrant.Condition_IsEmpty:
		vals, err := lookup(p.payload, o.IsEmpty.GetKey())
		if err != nil {
			return false, err
		}
		for _, v := range vals {
			if !isNull(v) && (v.GetListValue() == nil || len(v.GetListValue().GetValues()) > 0) {
				return false, nil
			}
		}
		return true, nil
	case *qdrant.Condition_IsNull:
		vals, err := lookup(p.payload, o.IsNull.GetKey())
		if err != nil {
			return false, err
		}
		for _, v := range vals {
			if isNull(v) {
				return true, nil
			}
		}
		return false, nil
	default:
		return false, status.Errorf(codes.Unimplemented, "qdranttest: condition %T is not supported", o)
	}
}

func isNull(v *qdrant.Value) bool {
	_, ok := v.GetKind().(*qdrant.Value_NullValue)
	return ok
}

// matchField evaluates a field condition against the values at its key; a
// list value matches when any element does, as in Qdrant.
func matchField(fc *qdrant.FieldCondition, vals []*qdrant.Value) (bool, error) {
	if fc.GetGeoBoundingBox() != nil || fc.GetGeoRadius() != nil || fc.GetGeoPolygon() != nil ||
		fc.GetValuesCount() != nil || fc.GetDatetimeRange() != nil || fc.IsEmpty != nil || fc.IsNull != nil {
		return false, status.Error(codes.Unimplemented, "qdranttest: only match and range field conditions are supported")
	}
	for _, v := range vals {
		elems := []*qdrant.Value{v}
		if l := v.GetListValue(); l != nil {
			elems = l.GetValues()
		}
		for _, x := range elems {
			ok, err := matchScalar(fc, x)
			if err != nil || ok {
				return ok, err
			}
		}
	}
	return false, nil
}

// matchScalar evaluates a field condition against one scalar value.
func matchScalar(fc *qdrant.FieldCondition, v *qdrant.Value) (bool, error) {
	if m := fc.GetMatch(); m != nil {
		switch mv := m.GetMatchValue().(type) {
		case *qdrant.Match_Keyword:
			s, ok := v.GetKind().(*qdrant.Value_StringValue)
			return ok && s.StringValue == mv.Keyword, nil
		case *qdrant.Match_Integer:
			i, ok := v.GetKind().(*qdrant.Value_IntegerValue)
			return ok && i.IntegerValue == mv.Integer, nil
		case *qdrant.Match_Boolean:
			b, ok := v.GetKind().(*qdrant.Value_BoolValue)
			return ok && b.BoolValue == mv.Boolean, nil
		case *qdrant.Match_Keywords:
			s, ok := v.GetKind().(*qdrant.Value_StringValue)
			return ok && toSet(mv.Keywords.GetStrings())[s.StringValue], nil
		case *qdrant.Match_Integers:
			i, ok := v.GetKind().(*qdrant.Value_IntegerValue)
			if !ok {
				return false, nil
			}
			for _, want := range mv.Integers.GetIntegers() {
				if want == i.IntegerValue {
					return true, nil
				}
			}
			return false, nil
		default:
			return false, status.Errorf(codes.Unimplemented, "qdranttest: match %T is not supported", mv)
		}
	}
	if r := fc.GetRange(); r != nil {
		var x float64
		switch n := v.GetKind().(type) {
		case *qdrant.Value_DoubleValue:
			x = n.DoubleValue
		case *qdrant.Value_IntegerValue:
			x = float64(n.IntegerValue)
		default:
			return false, nil
		}
		return (r.Lt == nil || x < *r.Lt) && (r.Lte == nil || x <= *r.Lte) &&
			(r.Gt == nil || x > *r.Gt) && (r.Gte == nil || x >= *r.Gte), nil
	}
	return false, errWrongInput("field condition on %q has neither match nor range", fc.GetKey())
}

// schemaType maps a field index type to the payload schema type Qdrant
// reports in CollectionInfo.
func schemaType(t qdrant.FieldType) qdrant.PayloadSchemaType {
	switch t {
	case qdrant.FieldType_FieldTypeKeyword:
		return qdrant.PayloadSchemaType_Keyword
	case qdrant.FieldType_FieldTypeInteger:
		return qdrant.PayloadSchemaType_Integer
	case qdrant.FieldType_FieldTypeFloat:
		return qdrant.PayloadSchemaType_Float
	case qdrant.FieldType_FieldTypeGeo:
		return qdrant.PayloadSchemaType_Geo
	case qdrant.FieldType_FieldTypeText:
		return qdrant.PayloadSchemaType_Text
	case qdrant.FieldType_FieldTypeBool:
		return qdrant.PayloadSchemaType_Bool
	case qdrant.FieldType_FieldTypeDatetime:
		return qdrant.PayloadSchemaType_Datetime
	case qdrant.FieldType_FieldTypeUuid:
		return qdrant.PayloadSchemaType_Uuid
	default:
		panic(fmt.Sprintf("qdranttest: unknown field type %v", t))
	}
}
