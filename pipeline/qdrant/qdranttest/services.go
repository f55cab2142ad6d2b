package qdranttest

import (
	"context"
	"slices"
	"sort"
	"strings"

	"github.com/qdrant/go-client/qdrant"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
	"google.golang.org/protobuf/proto"
)

// collectionsService implements the subset of qdrant.CollectionsServer the
// adapter uses; the rest answers Unimplemented.
type collectionsService struct {
	qdrant.UnimplementedCollectionsServer
	st *state
}

// Create creates a collection with one unnamed dense vector.
func (cs *collectionsService) Create(_ context.Context, req *qdrant.CreateCollection) (*qdrant.CollectionOperationResponse, error) {
	name := req.GetCollectionName()
	if name == "" {
		return nil, status.Error(codes.InvalidArgument, "Validation error in body: [collection_name: value \"\" invalid, must be from 1 to 255 characters]")
	}
	if i := strings.IndexAny(name, "/\\:*?\"<>|\x00"); i >= 0 {
		return nil, status.Errorf(codes.InvalidArgument, "Validation error in body: [collection_name: collection name cannot contain %q char]", name[i:i+1])
	}
	params := req.GetVectorsConfig().GetParams()
	if params == nil {
		return nil, status.Error(codes.Unimplemented, "qdranttest: only a single unnamed vector config is supported")
	}
	if params.GetSize() == 0 {
		return nil, errWrongInput("Vector size must be greater than 0")
	}
	if params.GetDistance() != qdrant.Distance_Cosine {
		return nil, status.Errorf(codes.Unimplemented, "qdranttest: distance %v is not supported (Cosine only)", params.GetDistance())
	}
	st := cs.st
	st.mu.Lock()
	defer st.mu.Unlock()
	if _, ok := st.collections[name]; ok {
		return nil, status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", name)
	}
	if _, ok := st.aliases[name]; ok {
		return nil, errWrongInput("Can't create collection with name %s. Alias with the same name already exists", name)
	}
	st.collections[name] = &collection{
		name:     name,
		dim:      int(params.GetSize()),
		distance: params.GetDistance(),
		points:   map[string]*point{},
		indexes:  map[string]qdrant.FieldType{},
	}
	return &qdrant.CollectionOperationResponse{Result: true}, nil
}

// Get describes a collection (aliases resolve).
func (cs *collectionsService) Get(_ context.Context, req *qdrant.GetCollectionInfoRequest) (*qdrant.GetCollectionInfoResponse, error) {
	st := cs.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	n := uint64(len(c.points))
	schema := map[string]*qdrant.PayloadSchemaInfo{}
	for k, t := range c.indexes {
		schema[k] = &qdrant.PayloadSchemaInfo{DataType: schemaType(t)}
	}
	return &qdrant.GetCollectionInfoResponse{Result: &qdrant.CollectionInfo{
		Status:          qdrant.CollectionStatus_Green,
		OptimizerStatus: &qdrant.OptimizerStatus{Ok: true},
		SegmentsCount:   1,
		Config: &qdrant.CollectionConfig{Params: &qdrant.CollectionParams{
			ShardNumber: 1,
			VectorsConfig: qdrant.NewVectorsConfig(&qdrant.VectorParams{
				Size: uint64(c.dim), Distance: c.distance,
			}),
		}},
		PayloadSchema:       schema,
		PointsCount:         &n,
		IndexedVectorsCount: new(uint64),
	}}, nil
}

// List lists collections by name.
func (cs *collectionsService) List(context.Context, *qdrant.ListCollectionsRequest) (*qdrant.ListCollectionsResponse, error) {
	st := cs.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	resp := &qdrant.ListCollectionsResponse{}
	for _, name := range sortedKeys(st.collections) {
		resp.Collections = append(resp.Collections, &qdrant.CollectionDescription{Name: name})
	}
	return resp, nil
}

// CollectionExists reports whether a collection (or alias) exists.
func (cs *collectionsService) CollectionExists(_ context.Context, req *qdrant.CollectionExistsRequest) (*qdrant.CollectionExistsResponse, error) {
	st := cs.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	_, err := st.resolve(req.GetCollectionName())
	return &qdrant.CollectionExistsResponse{Result: &qdrant.CollectionExists{Exists: err == nil}}, nil
}

// Delete drops a collection and its aliases. Like Qdrant it does not
// resolve aliases and answers result=false for a missing collection.
func (cs *collectionsService) Delete(_ context.Context, req *qdrant.DeleteCollection) (*qdrant.CollectionOperationResponse, error) {
	st := cs.st
	st.mu.Lock()
	defer st.mu.Unlock()
	name := req.GetCollectionName()
	if _, ok := st.collections[name]; !ok {
		return &qdrant.CollectionOperationResponse{Result: false}, nil
	}
	delete(st.collections, name)
	for a, target := range st.aliases {
		if target == name {
			delete(st.aliases, a)
		}
	}
	return &qdrant.CollectionOperationResponse{Result: true}, nil
}

// UpdateAliases applies alias actions in order under one lock, so readers
// never see a half-applied change. Like Qdrant: create overwrites an
// existing alias but needs an existing collection, delete of a missing
// alias is not an error, rename of a missing alias is NotFound, and actions
// before a failing one stay applied.
func (cs *collectionsService) UpdateAliases(_ context.Context, req *qdrant.ChangeAliases) (*qdrant.CollectionOperationResponse, error) {
	st := cs.st
	st.mu.Lock()
	defer st.mu.Unlock()
	for _, a := range req.GetActions() {
		switch op := a.GetAction().(type) {
		case *qdrant.AliasOperations_CreateAlias:
			coll, alias := op.CreateAlias.GetCollectionName(), op.CreateAlias.GetAliasName()
			if _, ok := st.collections[coll]; !ok {
				return nil, errNoCollection(coll)
			}
			if _, ok := st.collections[alias]; ok {
				return nil, status.Errorf(codes.AlreadyExists, "Wrong input: Collection `%s` already exists!", alias)
			}
			if alias == "" {
				return nil, errWrongInput("alias name must not be empty")
			}
			st.aliases[alias] = coll
		case *qdrant.AliasOperations_DeleteAlias:
			delete(st.aliases, op.DeleteAlias.GetAliasName())
		case *qdrant.AliasOperations_RenameAlias:
			old, nu := op.RenameAlias.GetOldAliasName(), op.RenameAlias.GetNewAliasName()
			target, ok := st.aliases[old]
			if !ok {
				return nil, status.Errorf(codes.NotFound, "Not found: Alias %s does not exists!", old)
			}
			delete(st.aliases, old)
			st.aliases[nu] = target
		default:
			return nil, errWrongInput("empty alias action")
		}
	}
	return &qdrant.CollectionOperationResponse{Result: true}, nil
}

// ListAliases lists all aliases by name.
func (cs *collectionsService) ListAliases(context.Context, *qdrant.ListAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	st := cs.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	return &qdrant.ListAliasesResponse{Aliases: st.aliasList("")}, nil
}

// ListCollectionAliases lists the aliases of one collection; like Qdrant,
// none (not an error) for a missing collection.
func (cs *collectionsService) ListCollectionAliases(_ context.Context, req *qdrant.ListCollectionAliasesRequest) (*qdrant.ListAliasesResponse, error) {
	st := cs.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	return &qdrant.ListAliasesResponse{Aliases: st.aliasList(req.GetCollectionName())}, nil
}

// aliasList returns aliases (of coll, or all when empty) by name; callers
// hold mu.
func (s *state) aliasList(coll string) []*qdrant.AliasDescription {
	var out []*qdrant.AliasDescription
	for _, a := range sortedKeys(s.aliases) {
		if coll == "" || s.aliases[a] == coll {
			out = append(out, &qdrant.AliasDescription{AliasName: a, CollectionName: s.aliases[a]})
		}
	}
	return out
}

// pointsService implements the subset of qdrant.PointsServer the adapter
// uses; the rest answers Unimplemented.
type pointsService struct {
	qdrant.UnimplementedPointsServer
	st *state
}

// done is the result of a write; with wait it is Completed.
func (ps *pointsService) done(wait bool) *qdrant.PointsOperationResponse {
	st := ps.st
	s := qdrant.UpdateStatus_Acknowledged
	if wait {
		s = qdrant.UpdateStatus_Completed
	}
	return &qdrant.PointsOperationResponse{Result: &qdrant.UpdateResult{OperationId: st.nextOp(), Status: s}}
}

// Upsert inserts or replaces points. Like Qdrant 1.17, ids and vector
// kinds are checked for the whole request before anything is written, but a
// vector of the wrong dimension fails only its own point: Qdrant applies an
// arbitrary subset of the other points and then answers the error; the fake
// applies every other point (the worst case for a caller that assumed
// all-or-nothing) and answers the first such error.
func (ps *pointsService) Upsert(_ context.Context, req *qdrant.UpsertPoints) (*qdrant.PointsOperationResponse, error) {
	if req.UpdateFilter != nil || req.ShardKeySelector != nil {
		return nil, status.Error(codes.Unimplemented, "qdranttest: update_filter and shard keys are not supported")
	}
	st := ps.st
	st.mu.Lock()
	defer st.mu.Unlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	type kp struct {
		key string
		p   *point
	}
	staged := make([]kp, 0, len(req.GetPoints()))
	var dimErr error
	for _, p := range req.GetPoints() {
		key, id, err := canonicalID(p.GetId())
		if err != nil {
			return nil, err
		}
		vec, err := denseVector(p.GetVectors())
		if err != nil {
			return nil, err
		}
		if err := checkDim(c, len(vec)); err != nil {
			if dimErr == nil {
				dimErr = err
			}
			continue
		}
		payload := make(map[string]*qdrant.Value, len(p.GetPayload()))
		for k, v := range p.GetPayload() {
			payload[k] = proto.Clone(v).(*qdrant.Value)
		}
		staged = append(staged, kp{key, &point{id: id, vec: normalize(vec), payload: payload}})
	}
	for _, s := range staged {
		c.points[s.key] = s.p
	}
	if dimErr != nil {
		return nil, dimErr
	}
	return ps.done(req.GetWait()), nil
}

// Delete removes points by ids or by filter; missing ids are skipped.
func (ps *pointsService) Delete(_ context.Context, req *qdrant.DeletePoints) (*qdrant.PointsOperationResponse, error) {
	st := ps.st
	st.mu.Lock()
	defer st.mu.Unlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	switch sel := req.GetPoints().GetPointsSelectorOneOf().(type) {
	case *qdrant.PointsSelector_Points:
		keys := make([]string, 0, len(sel.Points.GetIds()))
		for _, id := range sel.Points.GetIds() {
			k, _, err := canonicalID(id)
			if err != nil {
				return nil, err
			}
			keys = append(keys, k)
		}
		for _, k := range keys {
			delete(c.points, k)
		}
	case *qdrant.PointsSelector_Filter:
		var del []string
		for k, p := range c.points {
			ok, err := matchFilter(sel.Filter, k, p)
			if err != nil {
				return nil, err
			}
			if ok {
				del = append(del, k)
			}
		}
		for _, k := range del {
			delete(c.points, k)
		}
	default:
		return nil, errWrongInput("points selector is empty")
	}
	return ps.done(req.GetWait()), nil
}

// Get returns the points that exist, in request order, once each.
func (ps *pointsService) Get(_ context.Context, req *qdrant.GetPoints) (*qdrant.GetResponse, error) {
	st := ps.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	resp := &qdrant.GetResponse{}
	seen := map[string]bool{}
	for _, id := range req.GetIds() {
		k, _, err := canonicalID(id)
		if err != nil {
			return nil, err
		}
		p, ok := c.points[k]
		if !ok || seen[k] {
			continue
		}
		seen[k] = true
		resp.Result = append(resp.Result, &qdrant.RetrievedPoint{
			Id:      proto.Clone(p.id).(*qdrant.PointId),
			Payload: payloadFor(p.payload, req.GetWithPayload()),
			Vectors: vectorsFor(p.vec, req.WithVectors),
		})
	}
	return resp, nil
}

// Query runs a nearest-neighbour query by a dense vector: Cosine scores
// (the query is normalised too), best first, ties by point id.
func (ps *pointsService) Query(_ context.Context, req *qdrant.QueryPoints) (*qdrant.QueryResponse, error) {
	if len(req.GetPrefetch()) > 0 || req.LookupFrom != nil || req.GetUsing() != "" || req.ShardKeySelector != nil {
		return nil, status.Error(codes.Unimplemented, "qdranttest: prefetch, lookup_from, using and shard keys are not supported")
	}
	nearest := req.GetQuery().GetNearest()
	dense := nearest.GetDense()
	if dense == nil {
		return nil, status.Error(codes.Unimplemented, "qdranttest: only nearest queries by a dense vector are supported")
	}
	st := ps.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	if err := checkDim(c, len(dense.GetData())); err != nil {
		return nil, err
	}
	q := normalize(dense.GetData())
	type scored struct {
		key   string
		p     *point
		score float32
	}
	var hits []scored
	for k, p := range c.points {
		ok, err := matchFilter(req.GetFilter(), k, p)
		if err != nil {
			return nil, err
		}
		if !ok {
			continue
		}
		s := dot(q, p.vec)
		if req.ScoreThreshold != nil && s < req.GetScoreThreshold() {
			continue
		}
		hits = append(hits, scored{k, p, s})
	}
	sort.Slice(hits, func(i, j int) bool {
		if hits[i].score != hits[j].score {
			return hits[i].score > hits[j].score
		}
		return hits[i].key < hits[j].key
	})
	limit := uint64(10)
	if req.Limit != nil {
		limit = req.GetLimit()
	}
	off := min(req.GetOffset(), uint64(len(hits)))
	hits = hits[off:]
	if uint64(len(hits)) > limit {
		hits = hits[:limit]
	}
	resp := &qdrant.QueryResponse{Result: make([]*qdrant.ScoredPoint, 0, len(hits))}
	for _, h := range hits {
		resp.Result = append(resp.Result, &qdrant.ScoredPoint{
			Id:      proto.Clone(h.p.id).(*qdrant.PointId),
			Payload: payloadFor(h.p.payload, req.GetWithPayload()),
			Score:   h.score,
			Vectors: vectorsFor(h.p.vec, req.WithVectors),
		})
	}
	return resp, nil
}

// Count counts the points that pass the filter (always exactly).
func (ps *pointsService) Count(_ context.Context, req *qdrant.CountPoints) (*qdrant.CountResponse, error) {
	st := ps.st
	st.mu.RLock()
	defer st.mu.RUnlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	n := uint64(0)
	for k, p := range c.points {
		ok, err := matchFilter(req.GetFilter(), k, p)
		if err != nil {
			return nil, err
		}
		if ok {
			n++
		}
	}
	return &qdrant.CountResponse{Result: &qdrant.CountResult{Count: n}}, nil
}

// CreateFieldIndex records a payload index; creating it again is not an
// error. Filters work with or without indexes, as in Qdrant without strict
// mode.
func (ps *pointsService) CreateFieldIndex(_ context.Context, req *qdrant.CreateFieldIndexCollection) (*qdrant.PointsOperationResponse, error) {
	if req.FieldType == nil {
		return nil, errWrongInput("field_type is required")
	}
	t := req.GetFieldType()
	if _, ok := qdrant.FieldType_name[int32(t)]; !ok {
		return nil, errWrongInput("unknown field type %d", t)
	}
	if req.GetFieldName() == "" {
		return nil, errWrongInput("field_name must not be empty")
	}
	st := ps.st
	st.mu.Lock()
	defer st.mu.Unlock()
	c, err := st.resolve(req.GetCollectionName())
	if err != nil {
		return nil, err
	}
	c.indexes[req.GetFieldName()] = t
	return ps.done(req.GetWait()), nil
}

// sortedKeys returns m's keys in order.
func sortedKeys[V any](m map[string]V) []string {
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	return keys
}
