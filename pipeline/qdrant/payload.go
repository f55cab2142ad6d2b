package qdrant

import (
	"fmt"

	qc "github.com/qdrant/go-client/qdrant"

	"github.com/streamrec/streamrec/pipeline"
)

// toValues converts a payload to Qdrant values. It keeps the types
// pipeline.Payload allows (string, []string, float64, int64, bool) and
// widens int, int32, float32 and []any of strings; anything else, and the
// reserved key "_id", is ErrPayload.
func toValues(p pipeline.Payload) (map[string]*qc.Value, error) {
	out := make(map[string]*qc.Value, len(p)+1)
	for k, v := range p {
		if k == idKey {
			return nil, fmt.Errorf("%w: key %q is reserved", ErrPayload, idKey)
		}
		var val *qc.Value
		switch v := v.(type) {
		case string:
			val = qc.NewValueString(v)
		case []string:
			vals := make([]*qc.Value, len(v))
			for i, s := range v {
				vals[i] = qc.NewValueString(s)
			}
			val = qc.NewValueList(&qc.ListValue{Values: vals})
		case []any:
			vals := make([]*qc.Value, len(v))
			for i, e := range v {
				s, ok := e.(string)
				if !ok {
					return nil, fmt.Errorf("%w: %s[%d] is %T, want string", ErrPayload, k, i, e)
				}
				vals[i] = qc.NewValueString(s)
			}
			val = qc.NewValueList(&qc.ListValue{Values: vals})
		case float64:
			val = qc.NewValueDouble(v)
		case float32:
			val = qc.NewValueDouble(float64(v))
		case int64:
			val = qc.NewValueInt(v)
		case int:
			val = qc.NewValueInt(int64(v))
		case int32:
			val = qc.NewValueInt(int64(v))
		case bool:
			val = qc.NewValueBool(v)
		default:
			return nil, fmt.Errorf("%w: %s is %T (want string, []string, float64, int64 or bool)", ErrPayload, k, v)
		}
		out[k] = val
	}
	return out, nil
}

// fromValues converts a stored payload back, taking the entity id out of
// "_id" (the point id when a point lacks it). Lists become []string, numbers
// int64 or float64 as stored, except that the documented keys get their
// documented types (price float64, updated_at int64, category_path
// []string) whichever way JSON kept them.
func fromValues(vals map[string]*qc.Value, pid *qc.PointId) (string, pipeline.Payload, error) {
	id := pid.GetUuid()
	if pid.GetUuid() == "" {
		id = fmt.Sprint(pid.GetNum())
	}
	var out pipeline.Payload
	for k, v := range vals {
		if k == idKey {
			id = v.GetStringValue()
			continue
		}
		x, err := fromValue(v)
		if err != nil {
			return "", nil, fmt.Errorf("%w: point %s key %s: %w", ErrPayload, id, k, err)
		}
		switch k {
		case pipeline.PayloadPrice:
			if i, ok := x.(int64); ok {
				x = float64(i)
			}
		case pipeline.PayloadUpdatedAt:
			if f, ok := x.(float64); ok && f == float64(int64(f)) {
				x = int64(f)
			}
		case pipeline.PayloadCategory:
			if s, ok := x.(string); ok {
				x = []string{s}
			}
		}
		if out == nil {
			out = make(pipeline.Payload, len(vals))
		}
		out[k] = x
	}
	return id, out, nil
}

// fromValue converts one value; lists must hold strings.
func fromValue(v *qc.Value) (any, error) {
	switch k := v.GetKind().(type) {
	case *qc.Value_StringValue:
		return k.StringValue, nil
	case *qc.Value_DoubleValue:
		return k.DoubleValue, nil
	case *qc.Value_IntegerValue:
		return k.IntegerValue, nil
	case *qc.Value_BoolValue:
		return k.BoolValue, nil
	case *qc.Value_ListValue:
		out := make([]string, 0, len(k.ListValue.GetValues()))
		for i, e := range k.ListValue.GetValues() {
			s, ok := e.GetKind().(*qc.Value_StringValue)
			if !ok {
				return nil, fmt.Errorf("list element %d is %T, want a string", i, e.GetKind())
			}
			out = append(out, s.StringValue)
		}
		return out, nil
	default:
		return nil, fmt.Errorf("value kind %T is not supported", k)
	}
}

// denseOf returns the dense vector of a retrieved point, nil if none.
func denseOf(v *qc.VectorsOutput) []float32 {
	vec := v.GetVector()
	if vec == nil {
		return nil
	}
	if d := vec.GetDense(); d != nil {
		return d.GetData()
	}
	return vec.GetData() //nolint:staticcheck // servers before 1.13 fill only the deprecated field
}
